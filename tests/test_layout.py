"""The layout's two rules: no file outside tests/ changes `sys.path`, and the model (the flat files at the
package's top, which `save_pretrained` copies beside the weights) never imports the library around it."""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

from helpers import REPO_ROOT

PACKAGE = REPO_ROOT / "modeling_twrvae"
LIBRARY = ("data", "metrics", "trainer", "hub", "commands", "storage")
# the `python -m modeling_twrvae` entry point is the command line, not part of the model
NOT_THE_MODEL = {"__main__.py"}
SKIPPED_FOLDERS = {".git", "tests", "build", "dist", "outputs", "runs", "__pycache__", ".venv"}

# sys.path.insert / append / extend / remove / ..., sys.path[...] = ..., sys.path = / +=, site.addsitedir
CHANGES_SYS_PATH = re.compile(
    r"sys\.path\s*(\.\s*(insert|append|extend|remove|pop|clear)\s*\(|\[[^\]]*\]\s*=[^=]|\+=|=[^=])"
    r"|site\.addsitedir\s*\("
)


def source_files():
    """The repository's Python and shell files outside tests/ (and outside hidden and output folders)."""
    for folder, subfolders, names in os.walk(REPO_ROOT):
        subfolders[:] = sorted(name for name in subfolders if name not in SKIPPED_FOLDERS and not name.startswith("."))
        yield from (Path(folder) / name for name in sorted(names) if name.endswith((".py", ".sh")))


def test_no_file_outside_tests_changes_sys_path():
    files = list(source_files())
    assert any(path.parent == PACKAGE for path in files) and any(path.parent.name == "benchmarks" for path in files)
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if CHANGES_SYS_PATH.search(line)
    ]
    assert not offenders, "sys.path changes outside tests/:\n" + "\n".join(offenders)


def test_the_sys_path_pattern_catches_changes():
    for line in ('sys.path.insert(0, "x")', "sys.path.append(root)", "sys.path[:0] = [root]", "sys.path += [x]",
                 "sys.path = [x] + sys.path", "site.addsitedir(x)"):  # fmt: skip
        assert CHANGES_SYS_PATH.search(line), line
    for line in ("print(sys.path)", "if root in sys.path:", "no sys.path changes", "sys.path == paths"):
        assert not CHANGES_SYS_PATH.search(line), line


def library_imports(path) -> list[str]:
    """The imports of `path` (a flat file of the package) that reach into the library subpackages."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # from .x import y / from . import x
                names = [node.module] if node.module else [alias.name for alias in node.names]
            elif node.module and node.module.startswith("modeling_twrvae"):
                rest = node.module.removeprefix("modeling_twrvae").lstrip(".")
                names = [rest] if rest else [alias.name for alias in node.names]
            else:
                continue
        elif isinstance(node, ast.Import):
            names = [
                alias.name.removeprefix("modeling_twrvae.")
                for alias in node.names
                if alias.name.startswith("modeling_twrvae.")
            ]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module",
            "__import__",
        ):
            names = [
                arg.value.removeprefix("modeling_twrvae.").lstrip(".")
                for arg in node.args[:1]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
            ]
        else:
            continue
        found += [f"{path.name}:{node.lineno}: {name}" for name in names if name.split(".")[0] in LIBRARY]
    return found


def test_the_model_files_never_import_the_library():
    flat = [path for path in sorted(PACKAGE.glob("*.py")) if path.name not in NOT_THE_MODEL]
    assert {"modeling_twrvae.py", "configuration_twrvae.py", "pipeline_twrvae.py", "texts.py"} <= {p.name for p in flat}
    assert all((PACKAGE / name / "__init__.py").is_file() for name in LIBRARY)
    offenders = [found for path in flat for found in library_imports(path)]
    assert not offenders, (
        "the model's files import the library (the model must travel to the Hub alone):\n" + "\n".join(offenders)
    )


def test_the_model_files_hold_no_library_code():
    """What only the commands, the trainer and the Hub tools use lives in the library, so the files a saved model
    carries are the ones loading and running it needs."""
    library_only = {"locked_folder", "remove_temporary_leftovers", "FolderInUseError", "load_tokenizer",
                    "check_tokenizer_json", "train_in_folder"}  # fmt: skip
    defined = {
        f"{path.name}: {node.name}"
        for path in PACKAGE.glob("*.py")
        for node in ast.parse(path.read_text(encoding="utf-8")).body
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in library_only
    }
    assert not defined, defined


def test_the_import_check_catches_library_imports(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from .metrics.likelihood import likelihoods\nfrom . import trainer\nimport modeling_twrvae.hub.model_card\n"
        "from modeling_twrvae.data import corpora\nimportlib.import_module('modeling_twrvae.commands.cli')\n"
        "from .distributions import DiagonalGaussianDistribution\nfrom . import recurrence\n"
    )
    assert [found.split(": ")[1] for found in library_imports(probe)] == [
        "metrics.likelihood",
        "trainer",
        "hub.model_card",
        "data",
        "commands.cli",
    ]


def test_importing_the_package_loads_no_library_module():
    code = "import sys, modeling_twrvae; print(sorted(m for m in sys.modules if m.startswith('modeling_twrvae.')))"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = eval(done.stdout.strip())
    assert loaded and not [name for name in loaded if name.split(".")[1] in LIBRARY], loaded


def test_every_repository_path_named_in_the_code_and_the_docs_exists():
    """A docstring or page that names a file of the repository names one that is there (placeholders such as NAME
    or DEVICE, globs and the generated outputs/ aside)."""
    listed = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True).stdout.split()
    folders = "modeling_twrvae|training|benchmarks|scripts|docs|tests|demo|model_cards"
    pattern = re.compile(rf"(?<![\w/.-])((?:{folders})/[\w/.-]*\w\.(?:py|md|sh|yaml|json|png|txt))")
    missing = []
    for name in listed:
        if not name.endswith((".py", ".md", ".sh", ".yaml", ".yml", ".toml")) or name == "CHANGELOG.md":
            continue
        for match in pattern.finditer((REPO_ROOT / name).read_text(errors="ignore")):
            path = match.group(1)
            if re.search(r"[A-Z]{4,}", path):  # a placeholder: benchmarks/NAME.py, ...-DEVICE.json
                continue
            if not (REPO_ROOT / path).exists() and not (REPO_ROOT / "docs" / path).exists():
                missing.append(f"{name}: {path}")
    assert not missing, "\n".join(missing)
