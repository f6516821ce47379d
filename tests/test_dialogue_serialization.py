import json
import os
import subprocess
import sys

import pytest
import torch
from transformers import AutoConfig, AutoModel

from modeling_twrvae import TWRCVAEConfig, TWRCVAEModel, train_tokenizer

from dialogue_helpers import batch_of, dailydialog_pairs, dialogue_tokenizer, tiny_cvae
from helpers import without_the_package


def test_save_load_and_fresh_process_remote_code_give_identical_outputs(tmp_path):
    tokenizer = dialogue_tokenizer()
    model = tiny_cvae("cvae", len(tokenizer)).eval()
    batch = batch_of(dailydialog_pairs(6), tokenizer)
    with torch.no_grad():
        logits = model(**batch).logits
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)

    names = set(os.listdir(folder))
    assert {"model.safetensors", "config.json", "modeling_twrcvae.py", "configuration_twrcvae.py"} <= names
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "twrcvae"
    assert config["auto_map"] == {
        "AutoConfig": "configuration_twrcvae.TWRCVAEConfig",
        "AutoModel": "modeling_twrcvae.TWRCVAEModel",
    }
    assert isinstance(AutoConfig.from_pretrained(folder), TWRCVAEConfig)
    loaded = AutoModel.from_pretrained(folder)
    assert isinstance(loaded, TWRCVAEModel) and loaded.config.bow_loss_weight == 1.0
    with torch.no_grad():
        assert torch.equal(loaded.eval()(**batch).logits, logits)

    torch.save({"batch": dict(batch), "logits": logits}, tmp_path / "reference.pt")
    script = without_the_package(
        f"""
        import torch
        from transformers import AutoModel, AutoTokenizer
        reference = torch.load({str(tmp_path / "reference.pt")!r})
        model = AutoModel.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        with torch.no_grad():
            logits = model(**reference["batch"]).logits
        assert torch.equal(logits, reference["logits"]), (logits - reference["logits"]).abs().max()
        tokenizer = AutoTokenizer.from_pretrained({str(folder)!r})
        assert len(model.respond(["hello !"], tokenizer, num_return_sequences=2, max_new_tokens=4)) == 2
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


def test_checkpoint_checks_cover_the_dialogue_model(tmp_path):
    tokenizer = dialogue_tokenizer()
    tiny_cvae("twr-cvae", len(tokenizer)).save_pretrained(tmp_path)
    train_tokenizer(["just a few words"], vocab_size=50).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="tokens but the model's config has vocab_size"):
        AutoModel.from_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(OSError, match=r"model\.safetensors is missing"):
        AutoModel.from_pretrained(tmp_path)
