"""training/publish.py for the dialogue model: the same command builds, verifies and describes a `twrcvae` folder."""

import json
import os
import re

import pytest
import torch
from huggingface_hub import ModelCard

from modeling_twrvae.commands import publish
from modeling_twrvae.file_utils import weights_fingerprint
from modeling_twrvae.hub import folder as hub_folder

from dialogue_helpers import dailydialog_pairs, dialogue_tokenizer, tiny_cvae
from helpers import REPO_ROOT, folder_digest, run_without_package

REPO_ID = "org/twr-cvae-dailydialog"


def fake_dialogue_results(pairs):
    """The shape of training/evaluate.py's dialogue JSON, with made-up numbers (the card must carry exactly these)."""
    return {
        "model": "checkpoint",
        "data": "dailydialog:test",
        "num_contexts": 500,
        "num_responses": 10,
        "seed": 0,
        "bleu_recall_papers": 0.2514,
        "bleu_precision_papers": 0.1733,
        "bleu_f1_papers": 0.2052,
        "bleu_recall": 0.0712,
        "bleu_precision": 0.0401,
        "bleu_f1": 0.0513,
        "bow_average": 0.9012,
        "inter_distinct_2": 0.4021,
        "elbo_nll": 58.7702,
        "elbo_ppl": 80.5,
        "kl_decoded": 1.4433,
        "examples": [
            {"context": row["context"], "reference": row["response"], "responses": [row["response"]] * 3}
            for row in pairs
        ],
    }


@pytest.fixture(scope="module")
def published_dialogue(tmp_path_factory):
    checkpoint = tmp_path_factory.mktemp("dialogue-checkpoint")
    tokenizer = dialogue_tokenizer()
    model = tiny_cvae("twr-cvae", len(tokenizer)).eval()
    model.save_pretrained(checkpoint)
    tokenizer.save_pretrained(checkpoint)
    config_file = REPO_ROOT / "modeling_twrvae/trainer/configs/dialogue/dailydialog-twr-cvae.yaml"
    (checkpoint / "training_config.yaml").write_text(config_file.read_text())
    fingerprint = {"weights_sha256": weights_fingerprint(checkpoint)}  # results of these weights, as the scripts write
    validation = {"step": 2000, "elbo_nll": 70.7, "reconstruction_loss": 69.6, "kl_decoded": 1.1, "num_sentences": 689}
    (checkpoint / "eval_results.json").write_text(json.dumps({**validation, **fingerprint}))
    pairs = dailydialog_pairs(count=12).select([3, 7, 11])
    results = {**fake_dialogue_results(pairs), **fingerprint}
    (checkpoint / "test_results.json").write_text(json.dumps(results))
    folder = publish.main([str(checkpoint), "--repo-id", REPO_ID])
    return {"checkpoint": checkpoint, "folder": folder, "results": results, "model": model, "tokenizer": tokenizer}


def test_dialogue_folder_holds_its_own_model_class_code_and_results(published_dialogue):
    folder = published_dialogue["folder"]
    names = set(os.listdir(folder))
    assert {"model.safetensors", "modeling_twrcvae.py", "configuration_twrcvae.py", "README.md"} <= names
    assert json.loads((folder / "config.json").read_text())["auto_map"]["AutoModel"] == (
        "modeling_twrcvae.TWRCVAEModel"
    )
    assert json.loads((folder / "test_results.json").read_text()) == published_dialogue["results"]


def test_dialogue_card_describes_the_dialogue_model_with_the_json_numbers(published_dialogue):
    card = ModelCard.load(published_dialogue["folder"] / "README.md")
    results = published_dialogue["results"]
    by_type = {entry.metric_type: entry for entry in card.data.eval_results}
    assert list(by_type) == ["bleu_f1_papers", "bleu_f1", "bow_average", "inter_distinct_2", "elbo_nll", "kl_decoded"]
    for key, entry in by_type.items():
        assert entry.metric_value == results[key] and entry.dataset_split == "test", key
    assert {"dialogue", "twr-cvae"} <= set(card.data.tags)
    assert card.data.pipeline_tag is None  # no Hub task's pipeline loads a conditional VAE, so none is named
    text = card.text
    flat = " ".join(text.split())
    assert "TWR-VAE for dialogue" in text and "(the preset `twr-cvae`)" in flat and "DailyDialog" in text
    assert "CC BY-NC-SA 4.0" in text and "@inproceedings{zhao-etal-2017-learning" in text
    assert "| BLEU-F1 (papers') | 0.205 |" in text and "| KL of the decoded z | 1.44 |" in text
    assert "has not collapsed" in text and "linear, weight 1.0 from 0.1 over 1000 updates" in text
    assert "689 responses" in flat and "texts" not in flat.split("## Results")[0].split("## Training data")[1]
    # the first example of the JSON, as a context, its reference and responses
    example = results["examples"][0]
    assert f"reference: {example['reference']}" in text and f"context:   {example['context'][-1]}" in text


def test_dialogue_card_usage_snippet_runs_without_the_package(published_dialogue, tmp_path):
    text = (published_dialogue["folder"] / "README.md").read_text()
    (snippet,) = re.findall(r"```python\n(.*?)```", text, re.S)
    snippet = snippet.replace(json.dumps(REPO_ID), json.dumps(str(published_dialogue["folder"])))
    report = 'print("\\n" + json.dumps({"ids": len(ids), "module": type(model).__module__}))'
    result = run_without_package(snippet + report, tmp_path)
    assert result["ids"] == 3 and result["module"].startswith("transformers_modules")


def test_the_dialogue_probe_is_seeded_responses_to_the_results_contexts(published_dialogue):
    model, tokenizer = published_dialogue["model"], published_dialogue["tokenizer"]
    contexts = [example["context"] for example in published_dialogue["results"]["examples"]]
    probe = publish.greedy_probe(model, tokenizer, contexts)
    assert probe["contexts"] == contexts and len(probe["responses"]) == 3
    assert publish.greedy_probe(model, tokenizer, contexts) == probe  # the same draws again: a fair comparison


def test_a_dialogue_folder_that_responds_otherwise_is_refused(published_dialogue, monkeypatch):
    folder = published_dialogue["folder"]
    before = folder_digest(folder)
    real_probe = publish.greedy_probe

    def probe_of_another_model(model, tokenizer, contexts):
        bias = model.lm_head.bias
        saved = bias.detach().clone()
        with torch.no_grad():  # what the checkpoint would say if the saved weights were not the ones it runs
            bias[7] += 100.0
            probe = real_probe(model, tokenizer, contexts)
            bias.copy_(saved)
        return probe

    monkeypatch.setattr(hub_folder, "greedy_probe", probe_of_another_model)
    with pytest.raises(publish.PublishError, match=r"gives other greedy responses than the checkpoint"):
        publish.main([str(published_dialogue["checkpoint"]), "--repo-id", REPO_ID])
    assert folder_digest(folder) == before
