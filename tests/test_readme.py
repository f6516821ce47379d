import re

from helpers import DATA_DIR, REPO_ROOT


def test_the_readme_python_examples_run(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", (REPO_ROOT / "README.md").read_text(), re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)  # the examples save to ./my-twrvae
    namespace = {}
    exec(compile("\n".join(blocks).replace("../shared/data", str(DATA_DIR)), "README.md", "exec"), namespace)
    assert (tmp_path / "my-twrvae" / "model.safetensors").is_file()
    assert len(namespace["sentences"]) == 11 and namespace["ids"].shape[0] == 8
