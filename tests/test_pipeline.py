"""The "text-vae" pipeline: registered, recorded in saved configs, and loadable by remote code alone."""

import json
import os
import subprocess
import sys

import pytest
import torch
from transformers import AutoModel, pipeline

from modeling_twrvae import TextVAEPipeline
from modeling_twrvae.texts import TextInputError

from helpers import without_the_package
from saved_text_vaes import save_text_vae


@pytest.fixture(scope="module")
def folder(tokenizer, tmp_path_factory):
    return save_text_vae(tmp_path_factory.mktemp("pipeline") / "tiny-twrvae", tokenizer)


@pytest.fixture(scope="module")
def model(folder):
    return AutoModel.from_pretrained(folder).eval()


@pytest.fixture(scope="module")
def vae(folder):
    return pipeline("text-vae", model=str(folder), trust_remote_code=True)


@pytest.fixture(scope="module")
def texts(ptb_lines):
    return [line for line in ptb_lines if 5 <= len(line.split()) <= 12 and "<unk>" not in line][:3]


def test_saved_models_name_the_pipeline_and_carry_its_code(folder):
    config = json.loads((folder / "config.json").read_text())
    assert config["custom_pipelines"] == {
        "text-vae": {"impl": "pipeline_twrvae.TextVAEPipeline", "pt": ["AutoModel"], "type": "text"},
        "feature-extraction": {
            "impl": "pipeline_twrvae.TextVAEFeatureExtractionPipeline",
            "pt": ["AutoModel"],
            "type": "text",
        },
    }
    assert {"pipeline_twrvae.py", "texts.py", "generation_twrvae.py"} <= set(os.listdir(folder))


def test_calling_it_reconstructs(vae, model, tokenizer, texts):
    expected = model.reconstruct(texts, tokenizer)
    assert vae(texts[0]) == {"text": texts[0], "reconstruction": expected[0]}
    assert [output["reconstruction"] for output in vae(texts)] == expected and len(set(expected)) == len(texts)
    assert vae(texts[1], num_beams=3)["reconstruction"] == model.reconstruct(texts[1:2], tokenizer, num_beams=3)[0]
    batch = tokenizer(texts[:1], return_tensors="pt")
    mode = model.encode(batch["input_ids"], batch["attention_mask"]).mode()[0]
    assert torch.allclose(torch.tensor(vae(texts[0], return_latent=True)["latent"]), mode)


def test_sample_interpolate_and_encode(vae, model, tokenizer, texts):
    expected = model.sample(3, tokenizer, temperature=0.7, generator=torch.Generator().manual_seed(5))
    assert vae.sample(3, temperature=0.7, seed=5) == expected and len(set(expected)) > 1
    path = vae.interpolate(texts[0], texts[1], steps=4, method="slerp", max_new_tokens=6)
    alphas, sentences = model.interpolate(texts[0], texts[1], tokenizer, steps=4, method="slerp", max_new_tokens=6)
    assert path == [{"alpha": a, "text": t} for a, t in zip(alphas, sentences, strict=True)]
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    assert torch.allclose(vae.encode(texts, batch_size=2), model.encode(**batch).mean)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("   ", "The text is empty"),
        ("qqqzz zzyyq", "has no word in the model's vocabulary"),
        (" ".join(["the"] * 19), "is 19 words long; this model reads and writes at most 18"),
    ],
)
def test_unusable_input_is_a_clear_error(vae, text, message):
    # the remote-code pipeline raises its own copy of TextInputError, a ValueError
    with pytest.raises(ValueError, match=message) as error:
        vae(text)
    assert type(error.value).__name__ == TextInputError.__name__
    with pytest.raises(ValueError, match=message.replace("The text", "Text 2")):
        vae.interpolate("the company said", text)


def test_the_registered_task_serves_models_saved_without_custom_pipelines(folder, tmp_path, model, tokenizer, texts):
    older = tmp_path / "older"
    older.mkdir()
    for name in os.listdir(folder):
        (older / name).write_bytes((folder / name).read_bytes())
    config = json.loads((older / "config.json").read_text())
    del config["custom_pipelines"]
    (older / "config.json").write_text(json.dumps(config))
    vae = pipeline("text-vae", model=str(older))  # no remote code: the class this package registered
    assert type(vae) is TextVAEPipeline
    assert vae(texts[0])["reconstruction"] == model.reconstruct(texts[:1], tokenizer)[0]


def test_remote_code_pipeline_in_a_fresh_process_without_the_package(vae, folder, texts, tmp_path):
    reference = {
        "reconstructions": [output["reconstruction"] for output in vae(texts)],
        "samples": vae.sample(2, seed=1),
        "path": vae.interpolate(texts[0], texts[1], steps=3),
    }
    (tmp_path / "reference.json").write_text(json.dumps(reference))
    script = without_the_package(
        f"""
        from transformers import pipeline
        reference = json.load(open({str(tmp_path / "reference.json")!r}))
        vae = pipeline("text-vae", model={str(folder)!r}, trust_remote_code=True)
        assert type(vae).__module__.startswith("transformers_modules"), type(vae).__module__
        assert type(vae.model).__module__.startswith("transformers_modules"), type(vae.model).__module__
        texts = {texts!r}
        assert [o["reconstruction"] for o in vae(texts)] == reference["reconstructions"]
        assert vae.sample(2, seed=1) == reference["samples"]
        assert vae.interpolate(texts[0], texts[1], steps=3) == reference["path"]
        print("REMOTE-PIPELINE-OK")
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["HF_HUB_OFFLINE"] = "1"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "REMOTE-PIPELINE-OK" in result.stdout
