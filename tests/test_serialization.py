import json
import os
import subprocess
import sys

import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoTokenizer

from modeling_twrvae import TWRVAEConfig, TWRVAEModel, check_tokenizer, train_tokenizer

from helpers import tiny_model, without_the_package


@pytest.fixture(scope="module")
def saved(tokenizer, ptb_lines, tmp_path_factory):
    folder = tmp_path_factory.mktemp("hr-vae")
    model = tiny_model("hr-vae", len(tokenizer)).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    batch = tokenizer(ptb_lines[:6], padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
    return folder, batch, logits


def test_save_writes_safetensors_config_auto_map_and_source(saved):
    folder, _, _ = saved
    names = set(os.listdir(folder))
    assert "model.safetensors" in names and "config.json" in names
    assert not any(name.endswith((".bin", ".pt", ".pth")) for name in names)
    assert {"modeling_twrvae.py", "configuration_twrvae.py", "recurrence.py", "distributions.py"} <= names
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "twrvae"
    assert config["auto_map"] == {
        "AutoConfig": "configuration_twrvae.TWRVAEConfig",
        "AutoModel": "modeling_twrvae.TWRVAEModel",
    }


def test_round_trip_gives_identical_logits(saved):
    folder, batch, logits = saved
    assert isinstance(AutoConfig.from_pretrained(folder), TWRVAEConfig)
    for loaded in (AutoModel.from_pretrained(folder), TWRVAEModel.from_pretrained(folder)):
        assert isinstance(loaded, TWRVAEModel)
        with torch.no_grad():
            assert torch.equal(loaded.eval()(**batch).logits, logits)
    assert AutoTokenizer.from_pretrained(folder)("the company said")["input_ids"][0] == 2


def test_trust_remote_code_load_in_a_fresh_process_without_the_package(saved, tmp_path):
    folder, batch, logits = saved
    torch.save({"batch": dict(batch), "logits": logits}, tmp_path / "reference.pt")
    script = without_the_package(
        f"""
        import torch
        from transformers import AutoModel
        reference = torch.load({str(tmp_path / "reference.pt")!r})
        model = AutoModel.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        with torch.no_grad():
            logits = model(**reference["batch"]).logits
        assert torch.equal(logits, reference["logits"]), (logits - reference["logits"]).abs().max()
        print("REMOTE-CODE-OK")
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["HF_HUB_OFFLINE"] = "1"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "REMOTE-CODE-OK" in result.stdout


def copy_folder(source, target):
    target.mkdir()
    for name in os.listdir(source):
        (target / name).write_bytes((source / name).read_bytes())
    return target


def test_missing_weights_are_a_clear_error(saved, tmp_path):
    folder = copy_folder(saved[0], tmp_path / "copy")
    (folder / "model.safetensors").unlink()
    with pytest.raises(OSError, match=r"model\.safetensors is missing.*Copy the whole folder"):
        AutoModel.from_pretrained(folder)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_weights_are_a_clear_error(saved, tmp_path, damage):
    folder = copy_folder(saved[0], tmp_path / "copy")
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\x00\x01not safetensors" * 10)
    with pytest.raises(OSError, match=r"model\.safetensors is not a readable safetensors file.*corrupt"):
        AutoModel.from_pretrained(folder)


def test_mismatched_tokenizer_is_a_clear_error(saved, tmp_path, ptb_lines):
    folder = copy_folder(saved[0], tmp_path / "copy")
    other = train_tokenizer(ptb_lines, vocab_size=500)
    other.save_pretrained(folder)
    with pytest.raises(ValueError, match=r"tokenizer\.json has 500 tokens but the model's config has vocab_size=1200"):
        AutoModel.from_pretrained(folder)
    with pytest.raises(ValueError, match=r"has 500 tokens but the model's config has vocab_size=1200"):
        check_tokenizer(other, AutoConfig.from_pretrained(saved[0]))
    check_tokenizer(AutoTokenizer.from_pretrained(saved[0]), AutoConfig.from_pretrained(saved[0]))
