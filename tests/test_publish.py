"""training/publish.py and the model card: the published folder must work where this package is not installed.

There is no network here: every test works on local folders, and the tests of `--push` replace HfApi's network
methods (create_repo, create_branch, upload_folder) with recorders.
"""

import hashlib
import json
import os
import re
import shutil

import pytest
import torch
import yaml
from huggingface_hub import HfApi, ModelCard
from huggingface_hub import constants as hub_constants

from modeling_twrvae import TWRVAEConfig
from modeling_twrvae.commands import publish
from modeling_twrvae.file_utils import weights_fingerprint
from modeling_twrvae.hub import folder as hub_folder
from modeling_twrvae.hub.model_card import describe_model, identify_preset, render_model_card

from helpers import REPO_ROOT, folder_digest, run_without_package, tiny_model

REPO_ID = "org/twrvae-ptb"
PROBE_TOKENS = 12


def fake_results(texts):
    """The shape of training/evaluate.py's JSON, with made-up numbers (the card must carry exactly these)."""
    return {
        "model": "checkpoint",
        "data": "ptb:test",
        "seed": 0,
        "iw_samples": 100,
        "num_sentences": 1000,
        "num_predicted_tokens": 21503,
        "iw_nll": 121.0812,
        "iw_ppl": 204.3517,
        "elbo_nll": 123.7345,
        "reconstruction_loss": 119.0123,
        "kl_decoded": 4.7222,
        "kl_regularizer": 1.3051,
        "paper_nll": 119.0834,
        "paper_ppl": 150.1644,
        "mutual_information": 1.4821,
        "active_units": 5,
        "reconstruction_bleu": 0.58,
        "prior_distinct_2": 0.412,
        "examples": {"reconstructions": [{"input": text, "output": text} for text in texts]},
    }


@pytest.fixture(scope="module")
def published(tokenizer, ptb_lines, tmp_path_factory):
    """A checkpoint as training/train.py leaves it (tiny untrained model, real tokenizer), and its Hub folder."""
    checkpoint = tmp_path_factory.mktemp("checkpoint")
    model = tiny_model("twr-vae", len(tokenizer)).eval()
    model.save_pretrained(checkpoint)
    tokenizer.save_pretrained(checkpoint)
    training_config = yaml.safe_load((REPO_ROOT / "modeling_twrvae/trainer/configs/hub/ptb-twr-vae.yaml").read_text())
    (checkpoint / "training_config.yaml").write_text(yaml.safe_dump(training_config))
    fingerprint = {"weights_sha256": weights_fingerprint(checkpoint)}  # results of these weights, as the scripts write
    validation = {"step": 200, "elbo_nll": 120.5, "reconstruction_loss": 116.0, "kl_decoded": 4.5, "num_sentences": 337}
    (checkpoint / "eval_results.json").write_text(json.dumps({**validation, **fingerprint}))
    results = {**fake_results(ptb_lines[:2]), **fingerprint}
    (checkpoint / "test_results.json").write_text(json.dumps(results))
    folder = publish.main([str(checkpoint), "--repo-id", REPO_ID])
    latents = torch.randn(3, model.config.latent_size, generator=torch.Generator().manual_seed(1))
    expected = model.decode_latents(latents, tokenizer, do_sample=False, max_new_tokens=PROBE_TOKENS)
    return {"checkpoint": checkpoint, "folder": folder, "results": results, "latents": latents, "expected": expected}


LOAD_AND_DECODE = """
import torch
from transformers import AutoModel, AutoTokenizer
model = AutoModel.from_pretrained(NAME, trust_remote_code=True).eval()
tokenizer = AutoTokenizer.from_pretrained(NAME, trust_remote_code=True)
# without trust_remote_code it loads too (after asking, on a terminal, whether to run the config's code)
assert AutoTokenizer.from_pretrained(NAME).get_vocab() == tokenizer.get_vocab()
assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
texts = model.decode_latents(torch.load(LATENTS), tokenizer, do_sample=False, max_new_tokens={tokens})
RESULTS[NAME] = texts
"""


def test_build_writes_the_hub_folder_with_remote_code_card_and_results(published):
    folder = published["folder"]
    assert folder == published["checkpoint"] / "hub"
    names = set(os.listdir(folder))
    assert {
        "model.safetensors",
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "modeling_twrvae.py",
        "configuration_twrvae.py",
        "README.md",
        "training_config.yaml",
        "test_results.json",
    } <= names
    assert not any(name.startswith("tmp_") for name in os.listdir(published["checkpoint"]))  # no half-built folder
    assert json.loads((folder / "config.json").read_text())["auto_map"]["AutoModel"] == "modeling_twrvae.TWRVAEModel"
    assert json.loads((folder / "test_results.json").read_text()) == published["results"]


def test_published_folder_loads_without_the_package_from_the_folder_and_from_a_hub_cache(published, tmp_path):
    # the cache is laid out as huggingface_hub downloads a repo: models--org--name/snapshots/<commit>/...,
    # refs/main -> <commit>; with HF_HUB_OFFLINE=1 the repo id resolves there and nowhere else
    commit = hashlib.sha1(b"twrvae-ptb").hexdigest()
    repo = tmp_path / "hub-cache" / "models--org--twrvae-ptb"
    shutil.copytree(published["folder"], repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    torch.save(published["latents"], tmp_path / "latents.pt")
    script = f"LATENTS, RESULTS = {str(tmp_path / 'latents.pt')!r}, {{}}\n"
    for name in (str(published["folder"]), REPO_ID):
        script += f"NAME = {name!r}\n" + LOAD_AND_DECODE.format(tokens=PROBE_TOKENS)
    script += 'print("\\n" + json.dumps(RESULTS))'
    loaded = run_without_package(script, tmp_path, HF_HUB_CACHE=str(tmp_path / "hub-cache"))
    assert loaded == {str(published["folder"]): published["expected"], REPO_ID: published["expected"]}
    assert len(set(published["expected"])) > 1  # different latents, different text: the check tells models apart


def test_card_parses_and_its_model_index_holds_the_json_numbers(published):
    card = ModelCard.load(published["folder"] / "README.md")
    data = card.data
    assert data.library_name == "transformers" and data.pipeline_tag == "feature-extraction"
    assert {"text-vae", "twr-vae", "posterior-collapse"} <= set(data.tags)
    assert data.datasets == ["ptb-text-only/ptb_text_only"] and data.language == ["en"]
    assert data.license == "other" and data.license_name.startswith("ldc-user-agreement")  # PTB's terms
    results = published["results"]
    by_type = {entry.metric_type: entry for entry in data.eval_results}
    assert list(by_type)[:6] == ["iw_nll", "iw_ppl", "elbo_nll", "kl_decoded", "mutual_information", "active_units"]
    for key, entry in by_type.items():
        assert entry.metric_value == round(results[key], 4), key
        assert entry.dataset_type == "ptb-text-only/ptb_text_only" and entry.dataset_split == "test"
    assert "not a bound" in by_type["paper_nll"].metric_name and "not a bound" in by_type["paper_ppl"].metric_name
    assert "k=100" in by_type["iw_nll"].metric_name
    text = card.text
    assert "TWR-VAE" in text and "`twr-vae`" in text and "Penn Treebank" in text and "LDC" in text
    flat = " ".join(text.split())  # the template wraps its lines
    assert "| IW-NLL | 121.08 |" in text and "(1,000 texts, 21,503 predicted tokens)" in flat and "k = 100" in flat
    assert "5 of 6 latent dimensions are active: z carries information" in text  # the JSON's and the config's numbers
    assert "has not collapsed" not in text  # active units alone do not say what a reconstruction keeps
    steps = yaml.safe_load((published["folder"] / "training_config.yaml").read_text())["max_train_steps"]
    assert "337 texts" in text and f"{steps:,} updates" in text  # training data and settings
    assert "@inproceedings{li-etal-2020-improving" in text and "@inproceedings{li-etal-2019-stable" in text
    assert "Small training set" in text


def test_the_cards_pipeline_tag_names_a_pipeline_that_loads_the_model(published):
    from transformers import pipeline

    tag = ModelCard.load(published["folder"] / "README.md").data.pipeline_tag
    features = pipeline(tag, model=str(published["folder"]), trust_remote_code=True)
    vectors = features(["the company said it would report a loss", "the market fell"])
    assert len(vectors) == 2 and len(vectors[0][0]) == TWRVAEConfig.from_pretrained(published["folder"]).latent_size


def test_card_says_best_validation_only_when_there_was_a_choice(published):
    text = " ".join((published["folder"] / "README.md").read_text().split())
    steps = yaml.safe_load((published["folder"] / "training_config.yaml").read_text())
    assert steps["max_train_steps"] // steps["eval_steps"] > 1  # the fixture's run validated several times
    assert "The weights are those of the best validation -ELBO: update 200" in text
    config = json.loads((published["folder"] / "config.json").read_text())
    once = {**steps, "eval_steps": steps["max_train_steps"]}
    validation = {"step": 300, "elbo_nll": 1.0, "reconstruction_loss": 0.5, "kl_decoded": 0.5, "num_sentences": 9}
    card = render_model_card(REPO_ID, config, training_config=once, validation_results=validation).text
    card = " ".join(card.split())
    assert "best validation" not in card and "validated once, after its last update" in card


def test_card_shows_examples_and_what_reconstructions_keep(published, ptb_lines):
    config = json.loads((published["folder"] / "config.json").read_text())
    results = {
        **fake_results(ptb_lines[:2]),
        "data": "e2e:test",
        "reconstruction_bleu_other_input": 0.2,
        "reconstruction_exact_match": 0.01,
        "reconstruction_distinct": 0.9,
        "facts_kept": {
            "eat_type": {"kept": 0.9, "chance": 0.3, "count": 10},
            "area": {"kept": 0.4, "chance": 0.35, "count": 8},
            "mean": {"kept": 0.65, "chance": 0.33, "count": 18},
        },
        "interpolation": {"alphas": [0.0, 0.5, 1.0]},
    }
    results["examples"] |= {
        "prior_samples": ["a prior sample"],
        "aggregate_samples": ["an aggregate sample"],
        "interpolation": {"start": "a", "end": "b", "path": ["first", "middle", "last"]},
    }
    text = " ".join(render_model_card(REPO_ID, config, eval_results=results).text.split())
    assert f"| {ptb_lines[0]} | {ptb_lines[0]} |" in text  # input beside its reconstruction
    assert "- a prior sample" in text and "- an aggregate sample" in text and "| 0.5 | middle |" in text
    assert "BLEU 0.6 against their input, 0.2 against a random other input" in text
    assert (
        "It keeps eat type reliably" in text
        and "It does not reliably keep area (area 40% against 35% by chance)" in text
    )
    assert "| eat type | 10 | 90% | 30% |" in text


def test_card_usage_snippet_runs_as_written_against_the_local_folder(published, tmp_path):
    text = (published["folder"] / "README.md").read_text()
    (snippet,) = re.findall(r"```python\n(.*?)```", text, re.S)
    assert snippet.count(json.dumps(REPO_ID)) == 2
    snippet = snippet.replace(json.dumps(REPO_ID), json.dumps(str(published["folder"])))
    report = 'print("\\n" + json.dumps({"path": len(path), "ids": len(ids), "module": type(model).__module__}))'
    result = run_without_package(snippet + report, tmp_path)
    assert result["path"] == 5 and result["ids"] == 2 and result["module"].startswith("transformers_modules")


def test_push_without_a_token_fails_clearly_and_leaves_the_folder_identical(published, monkeypatch, tmp_path):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(hub_constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setattr(hub_constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-tokens"))
    before = folder_digest(published["folder"])
    with pytest.raises(publish.PublishError, match=r"^--push needs a Hugging Face token.*HF_TOKEN.*login"):
        publish.main([str(published["checkpoint"]), "--repo-id", REPO_ID, "--push"])
    assert folder_digest(published["folder"]) == before


@pytest.fixture
def recorded_hub(monkeypatch):
    """HfApi's network methods replaced by recorders: there is no network here, and nothing must really upload."""
    calls = []

    def create_repo(self, repo_id, **kwargs):
        calls.append(("create_repo", repo_id, kwargs))
        return f"https://huggingface.co/{repo_id}"

    def create_branch(self, repo_id, **kwargs):
        calls.append(("create_branch", repo_id, kwargs))

    def upload_folder(self, **kwargs):
        calls.append(("upload_folder", kwargs["repo_id"], {**kwargs, "token": self.token}))
        return type("Commit", (), {"commit_url": f"https://huggingface.co/{kwargs['repo_id']}/commit/abc"})()

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "create_branch", create_branch)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    monkeypatch.setenv("HF_TOKEN", "hf_fakeTokenForTheTest0123456789")
    return calls


def test_push_calls_hfapi_with_repo_id_revision_privacy_and_folder(
    published, recorded_hub, monkeypatch, tmp_path, capsys
):
    output = tmp_path / "hub"
    shutil.copytree(published["folder"], output)
    monkeypatch.setattr(publish, "build_hub_folder", lambda *args, **kwargs: output)  # built and verified above
    publish.main(
        [str(published["checkpoint"]), "--repo-id", REPO_ID, "--output_dir", str(output), "--push", "--private"]
        + ["--revision", "v1", "--commit-message", "first upload"]
    )
    assert [call[0] for call in recorded_hub] == ["create_repo", "create_branch", "upload_folder"]
    assert recorded_hub[0][1] == REPO_ID and recorded_hub[0][2]["private"] is True
    assert recorded_hub[1][2]["branch"] == "v1"
    upload = recorded_hub[2][2]
    assert upload["repo_id"] == REPO_ID and upload["revision"] == "v1" and upload["commit_message"] == "first upload"
    assert upload["folder_path"] == str(output) and upload["token"] == "hf_fakeTokenForTheTest0123456789"
    out = capsys.readouterr()
    assert "pushed to https://huggingface.co/org/twrvae-ptb" in out.out and "model.safetensors" in out.out
    assert "hf_fake" not in out.out + out.err  # the token is never printed


def test_failed_upload_is_one_line_and_keeps_the_folder(published, recorded_hub, monkeypatch, tmp_path):
    output = tmp_path / "hub"
    shutil.copytree(published["folder"], output)

    def no_network(self, **kwargs):
        raise ConnectionError(f"cannot reach huggingface.co with {self.token}\nmore detail")

    monkeypatch.setattr(HfApi, "upload_folder", no_network)
    monkeypatch.setattr(publish, "build_hub_folder", lambda *args, **kwargs: output)  # the upload is what is tested
    before = folder_digest(output)
    with pytest.raises(publish.PublishError) as error:
        publish.main([str(published["checkpoint"]), "--repo-id", REPO_ID, "--output_dir", str(output), "--push"])
    message = str(error.value)
    assert "\n" not in message and "ConnectionError" in message and "run again with --push" in message
    assert "hf_fake" not in message and "***" in message
    assert folder_digest(output) == before


def test_corrupt_weights_are_refused_before_any_upload(published, recorded_hub, tmp_path):
    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(published["checkpoint"], checkpoint)
    weights = checkpoint / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(publish.PublishError, match=r"model\.safetensors is not a readable safetensors file"):
        publish.main([str(checkpoint), "--repo-id", REPO_ID, "--push"])
    assert recorded_hub == []
    assert (checkpoint / "hub").is_dir() and folder_digest(checkpoint / "hub") == folder_digest(published["folder"])


def test_a_built_folder_that_does_not_load_back_is_refused(published, tmp_path):
    probe = {"latents": published["latents"], "texts": ["the company said"], "samples": [], "reconstructions": []}
    broken = tmp_path / "broken"
    shutil.copytree(published["folder"], broken)
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(publish.PublishError, match=r"does not load with trust_remote_code=True.*model\.safetensors"):
        publish.verify_hub_folder(broken, probe)


def test_a_folder_that_generates_other_text_is_refused_and_nothing_is_written(published, recorded_hub, monkeypatch):
    folder = published["folder"]
    before = folder_digest(folder)
    real_probe = publish.greedy_probe

    def probe_of_another_model(model, tokenizer, texts):
        probe = real_probe(model, tokenizer, texts)
        bias = model.decoder.lm_head.bias
        saved = bias.detach().clone()
        with torch.no_grad():  # what the checkpoint would say if the saved weights were not the ones it runs
            bias[5] += 100.0
            probe.update(real_probe(model, tokenizer, texts), latents=probe["latents"])
            bias.copy_(saved)
        return probe

    monkeypatch.setattr(hub_folder, "greedy_probe", probe_of_another_model)
    with pytest.raises(publish.PublishError, match=r"gives other greedy samples than the checkpoint"):
        publish.main([str(published["checkpoint"]), "--repo-id", REPO_ID, "--push"])
    assert recorded_hub == []
    assert folder_digest(folder) == before
    assert not any(name.startswith("tmp_") for name in os.listdir(published["checkpoint"]))


def test_yelp_card_renders_from_the_same_code_path():
    # No Yelp data here: its paper config, a model config of its vocabulary, and made-up results.
    training_config = yaml.safe_load((REPO_ROOT / "modeling_twrvae/trainer/configs/yelp/twr-vae.yaml").read_text())
    config = TWRVAEConfig.from_preset("twr-vae", vocab_size=20000).to_dict()
    results = {**fake_results(["the food was great", "slow service"]), "data": "yelp:test"}
    card = render_model_card(
        "org/twrvae-yelp", config, training_config=training_config, eval_results=results, num_parameters=12345678
    )
    parsed = ModelCard(str(card))
    assert parsed.data.eval_results[0].dataset_type == "yelp" and parsed.data.eval_results[0].metric_value == 121.0812
    assert parsed.data.datasets is None  # Yelp has no Hub twin to link
    assert "TWR-VAE on Yelp reviews" in parsed.text and "Yelp Dataset License" in parsed.text
    assert "Small training set" not in parsed.text  # the paper config trains on the training split
    assert "30 epochs, early stopping after 5" in parsed.text and "12,345,678" in parsed.text


@pytest.mark.parametrize(
    "preset, title",
    [
        ("twr-vae", "TWR-VAE"),
        ("twr-vae-mean", "TWR-VAE-mean"),
        ("twr-vae-sum", "TWR-VAE-sum"),
        ("twr-vae-last-50", "TWR-VAE, KL on the last 50% of timesteps"),
        ("hr-vae", "HR-VAE"),
        ("vae-lstm", "VAE-LSTM"),
    ],
)
def test_the_card_names_the_model_it_describes(preset, title):
    config = TWRVAEConfig.from_preset(preset, vocab_size=100).to_dict()
    assert identify_preset(config) == preset and describe_model(config)["title"] == title
    annealed = describe_model(config, {"kl_schedule": "sigmoid"})["title"]
    assert annealed == (title + " with sigmoid KL annealing" if preset == "vae-lstm" else title)
    collapsed = {**fake_results(["a b", "c d"]), "kl_decoded": 0.01, "active_units": 0, "mutual_information": 0.0}
    text = render_model_card("org/m", config, eval_results=collapsed).text
    assert f"This card describes **{title}**" in text and "**this model has collapsed**" in text


def test_card_says_plainly_when_reconstructions_do_not_reconstruct():
    from modeling_twrvae.hub.model_card import what_reconstructions_keep

    poor = {"reconstruction_bleu": 1.0, "reconstruction_bleu_other_input": 0.4, "reconstruction_distinct": 0.25}
    said = " ".join(what_reconstructions_keep(poor))
    assert (
        "this model does not reconstruct its inputs" in said and "Only 25% of the reconstructions are distinct" in said
    )
    good = {"reconstruction_bleu": 44.3, "reconstruction_bleu_other_input": 8.3, "reconstruction_distinct": 0.94}
    said = " ".join(what_reconstructions_keep(good))
    assert "closer to their own input than to another" in said and "does not reconstruct" not in said


def test_a_card_warns_when_the_model_trained_on_part_of_the_test_split():
    from modeling_twrvae.hub.model_card import describe_corpus, describe_training

    settings = {"dataset": "e2e", "train_split": "validation+test[1012:]", "validation_split_percentage": 10,
                "max_length": 64, "max_train_steps": 10, "per_device_train_batch_size": 2}  # fmt: skip
    warning = describe_training(settings, None, describe_corpus(settings), {})["small_data"]
    assert "trained on part of the test split (`validation+test[1012:]`)" in warning
    settings["train_split"] = "validation"
    assert (
        "part of the test split" not in describe_training(settings, None, describe_corpus(settings), {})["small_data"]
    )
