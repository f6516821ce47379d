"""The aggregate-posterior sampler: EM on posterior means (aggregate_posterior.py), the model's API, its storage
beside the weights (safetensors, the remote-code load), train.py's option, the pipeline, the command line and the
demo page."""

import importlib.util
import io
import json
import math
import shutil
import sys

import pytest
import torch
from accelerate.state import AcceleratorState, GradientState
from safetensors import safe_open
from transformers import AutoModel, AutoTokenizer, pipeline

from modeling_twrvae import TWRVAEModel
from modeling_twrvae.aggregate_posterior import AGGREGATE_POSTERIOR_FILE, GaussianMixture, load_mixture
from modeling_twrvae.commands import cli, train
from modeling_twrvae.file_utils import weights_fingerprint
from modeling_twrvae.hub.folder import build_hub_folder

from helpers import DATA_DIR, REPO_ROOT, informative, run_without_package, tiny_model

TOKENS = {"max_new_tokens": 8}


def two_gaussians(n=3000, seed=0):
    """700:300 draws of two well-separated diagonal Gaussians in 3-D, and their true parameters."""
    generator = torch.Generator().manual_seed(seed)
    weights = torch.tensor([0.7, 0.3])
    means = torch.tensor([[3.0, 0.0, 1.0], [-3.0, 1.0, 0.0]])
    stds = torch.tensor([[0.5, 0.5, 0.5], [1.0, 0.2, 0.3]])
    first = int(n * 0.7)
    points = torch.cat(
        [
            torch.randn(first, 3, generator=generator) * stds[0] + means[0],
            torch.randn(n - first, 3, generator=generator) * stds[1] + means[1],
        ]
    )
    return points, weights, means, stds


@pytest.mark.parametrize("covariance", ["diagonal", "full"])
def test_em_recovers_a_known_two_component_mixture(covariance):
    points, weights, means, stds = two_gaussians()
    mixture = GaussianMixture.fit(points, num_components=2, covariance=covariance, seed=0)
    order = mixture.means[:, 0].argsort(descending=True)  # the component at x = +3 first
    torch.testing.assert_close(mixture.weights[order].float(), weights, atol=0.01, rtol=0)
    torch.testing.assert_close(mixture.means[order].float(), means, atol=0.08, rtol=0)
    variances = mixture.scales if covariance == "diagonal" else torch.diagonal(mixture.scales, dim1=1, dim2=2)
    torch.testing.assert_close(variances[order].sqrt().float(), stds, atol=0.05, rtol=0)
    assert mixture.settings["converged"] and mixture.settings["num_points"] == 3000
    # log p(x): the fit's mean log-likelihood is the true density's, up to the fit's error
    true = torch.logsumexp(
        torch.stack(
            [torch.distributions.Normal(m, s).log_prob(points).sum(1) for m, s in zip(means, stds, strict=True)], 1
        )
        + weights.log(),
        dim=1,
    )
    assert abs(float(mixture.log_prob(points).mean() - true.mean())) < 0.02
    assert mixture.log_prob(points).mean() == pytest.approx(mixture.settings["mean_log_likelihood"], abs=1e-3)


def test_the_fit_and_the_samples_are_fixed_by_their_seeds():
    points, *_ = two_gaussians()
    first = GaussianMixture.fit(points, num_components=4, seed=3)
    again = GaussianMixture.fit(points, num_components=4, seed=3)
    assert torch.equal(first.means, again.means) and torch.equal(first.scales, again.scales)
    draws = first.sample(500, torch.Generator().manual_seed(1))
    assert draws.shape == (500, 3) and draws.dtype == torch.float32
    assert torch.equal(draws, first.sample(500, torch.Generator().manual_seed(1)))
    assert not torch.equal(draws, first.sample(500, torch.Generator().manual_seed(2)))
    many = first.sample(20000, torch.Generator().manual_seed(0))
    torch.testing.assert_close(many.mean(0), points.mean(0), atol=0.06, rtol=0)
    # temperature 0: every draw is a component's mean
    cold = first.sample(50, torch.Generator().manual_seed(0), temperature=0.0)
    assert all(any(torch.allclose(row.double(), mean, atol=1e-5) for mean in first.means) for row in cold)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_components": 0}, "positive integer"),
        ({"num_components": 5000}, "at least as many"),
        ({"covariance": "spherical"}, "covariance"),
        ({"variance_floor": 0.0}, "variance_floor"),
    ],
)
def test_bad_fit_settings_are_clear_errors(kwargs, message):
    points, *_ = two_gaussians(n=100)
    with pytest.raises(ValueError, match=message):
        GaussianMixture.fit(points, **kwargs)


@pytest.fixture(scope="module")
def lines(ptb_lines):
    return [line for line in ptb_lines if 4 <= len(line.split()) <= 20][:150]


@pytest.fixture
def fitted(tokenizer, lines):
    model = informative(tiny_model("twr-vae", len(tokenizer), seed=2))
    model.generation_config.max_length = 12
    model.fit_aggregate_posterior(lines, tokenizer, num_components=3, seed=0, batch_size=32)
    return model


def test_fitting_stores_the_mixture_on_the_model_and_its_settings_in_the_config(fitted, tokenizer, lines):
    mixture = fitted.aggregate_posterior
    assert mixture.num_components == 3 and mixture.dim == fitted.config.latent_size
    assert fitted.config.aggregate_posterior["file"] == AGGREGATE_POSTERIOR_FILE
    assert fitted.config.aggregate_posterior["num_points"] == len(lines)
    assert fitted.config.aggregate_posterior["seed"] == 0
    # the mixture describes the texts' posterior means: they are far likelier under it than under the prior
    batch = tokenizer(lines, padding=True, return_tensors="pt")
    means = fitted.encode(batch["input_ids"], batch["attention_mask"]).mode()
    prior = torch.distributions.Normal(0.0, 1.0).log_prob(means).sum(1)
    assert (mixture.log_prob(means) > prior).float().mean() > 0.9
    samples = fitted.sample(4, tokenizer, sampler="aggregate", generator=torch.Generator().manual_seed(5), **TOKENS)
    again = fitted.sample(4, tokenizer, sampler="aggregate", generator=torch.Generator().manual_seed(5), **TOKENS)
    assert samples == again and len(samples) == 4
    latents = fitted.sample_aggregate_posterior(4, generator=torch.Generator().manual_seed(5))
    assert samples == fitted.decode_latents(latents, tokenizer, **TOKENS)


def test_the_aggregate_sampler_without_a_mixture_says_how_to_fit_one(tokenizer):
    model = tiny_model("twr-vae", len(tokenizer))
    with pytest.raises(ValueError, match=r"no aggregate-posterior mixture.*fit_aggregate_posterior"):
        model.sample(2, tokenizer, sampler="aggregate")
    with pytest.raises(ValueError, match=r"`sampler` must be one of \['prior', 'aggregate'\]"):
        model.sample(2, tokenizer, sampler="posterior")
    assert len(model.sample(2, tokenizer, sampler="prior", **TOKENS)) == 2


def test_the_mixture_round_trips_through_save_pretrained(fitted, tokenizer, tmp_path):
    folder = tmp_path / "model"
    fitted.save_pretrained(folder)
    assert (folder / AGGREGATE_POSTERIOR_FILE).is_file() and (folder / "aggregate_posterior.py").is_file()
    with safe_open(str(folder / AGGREGATE_POSTERIOR_FILE), framework="pt") as handle:
        assert sorted(handle.keys()) == ["log_weights", "means", "variances"]
        metadata = handle.metadata()
    # it names the weights it belongs to, and is not one of them (results measured before the fit still match)
    assert metadata["weights_sha256"] == weights_fingerprint(folder)
    (folder / AGGREGATE_POSTERIOR_FILE).rename(tmp_path / "away.safetensors")
    assert weights_fingerprint(folder) == metadata["weights_sha256"]
    (tmp_path / "away.safetensors").rename(folder / AGGREGATE_POSTERIOR_FILE)
    assert json.loads((folder / "config.json").read_text())["aggregate_posterior"]["num_components"] == 3

    loaded = TWRVAEModel.from_pretrained(folder)
    for name in ("log_weights", "means", "scales"):
        assert torch.equal(getattr(loaded.aggregate_posterior, name), getattr(fitted.aggregate_posterior, name))
    assert loaded.config.aggregate_posterior == fitted.config.aggregate_posterior
    generator = torch.Generator().manual_seed(7)
    expected = fitted.sample(3, tokenizer, sampler="aggregate", generator=generator, **TOKENS)
    assert loaded.sample(3, tokenizer, sampler="aggregate", generator=torch.Generator().manual_seed(7), **TOKENS) == (
        expected
    )
    # removing the mixture and saving again leaves no stale file
    loaded.set_aggregate_posterior(None)
    loaded.save_pretrained(folder)
    assert not (folder / AGGREGATE_POSTERIOR_FILE).exists()
    assert json.loads((folder / "config.json").read_text())["aggregate_posterior"] is None


def test_the_mixture_loads_with_remote_code_in_a_process_without_the_package(fitted, tokenizer, tmp_path):
    folder = tmp_path / "model"
    fitted.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    expected = fitted.sample(3, tokenizer, sampler="aggregate", generator=torch.Generator().manual_seed(11), **TOKENS)
    latents = fitted.sample_aggregate_posterior(3, generator=torch.Generator().manual_seed(11)).tolist()
    script = f"""
        import torch
        from transformers import AutoModel, AutoTokenizer, pipeline
        folder = {str(folder)!r}
        model = AutoModel.from_pretrained(folder, trust_remote_code=True)
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        mixture = model.aggregate_posterior
        assert type(mixture).__module__.startswith("transformers_modules"), type(mixture).__module__
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
        generator = torch.Generator().manual_seed(11)
        texts = model.sample(3, tokenizer, sampler="aggregate", generator=generator, max_new_tokens=8)
        latents = model.sample_aggregate_posterior(3, generator=torch.Generator().manual_seed(11)).tolist()
        vae = pipeline("text-vae", model=folder, trust_remote_code=True)
        piped = vae.sample(3, seed=11, sampler="aggregate", max_new_tokens=8)
        print(json.dumps({{"texts": texts, "latents": latents, "piped": piped}}))
        """
    result = run_without_package(script, tmp_path)
    assert result["texts"] == expected and result["piped"] == expected
    assert result["latents"] == latents


def test_a_mixture_fitted_to_other_weights_is_not_loaded_and_the_warning_names_the_file(fitted, tokenizer, tmp_path):
    folder, other = tmp_path / "model", tmp_path / "other"
    fitted.save_pretrained(folder)
    tiny_model("twr-vae", len(tokenizer), seed=9).save_pretrained(other)
    shutil.copyfile(other / "model.safetensors", folder / "model.safetensors")  # the weights changed, not the file
    with pytest.warns(UserWarning, match=rf"{AGGREGATE_POSTERIOR_FILE} was fitted to other weights"):
        loaded = TWRVAEModel.from_pretrained(folder)
    assert loaded.aggregate_posterior is None and loaded.config.aggregate_posterior is None
    with pytest.raises(ValueError, match=r"fitted to other weights.*fit_aggregate_posterior"):
        loaded.sample(2, tokenizer, sampler="aggregate")
    assert len(loaded.sample(2, tokenizer, **TOKENS)) == 2  # the model itself is fine


def test_a_damaged_mixture_file_is_a_warning_and_the_model_still_loads(fitted, tokenizer, tmp_path):
    folder = tmp_path / "model"
    fitted.save_pretrained(folder)
    data = (folder / AGGREGATE_POSTERIOR_FILE).read_bytes()
    (folder / AGGREGATE_POSTERIOR_FILE).write_bytes(data[: len(data) // 2])
    with pytest.warns(UserWarning, match=rf"{AGGREGATE_POSTERIOR_FILE} could not be read"):
        loaded = TWRVAEModel.from_pretrained(folder)
    assert loaded.aggregate_posterior is None
    with pytest.raises(ValueError, match="could not be read"):
        loaded.sample_aggregate_posterior(2)
    assert len(loaded.sample(2, tokenizer, **TOKENS)) == 2


def test_weights_changed_after_the_fit_are_saved_without_the_mixture(fitted, tmp_path):
    with torch.no_grad():
        fitted.decoder.lm_head.bias.add_(1.0)
    with pytest.warns(UserWarning, match="fitted to other weights"):
        fitted.save_pretrained(tmp_path / "model")
    assert not (tmp_path / "model" / AGGREGATE_POSTERIOR_FILE).exists()
    assert fitted.aggregate_posterior is None
    assert json.loads((tmp_path / "model" / "config.json").read_text())["aggregate_posterior"] is None


def test_train_py_fits_the_mixture_a_resume_may_refit_it_and_publish_carries_it(tmp_path):
    out = tmp_path / "run"
    argv = [
        "--dataset", "e2e", "--data_dir", str(DATA_DIR), "--train_split", "validation",
        "--validation_split_percentage", "20", "--max_train_samples", "80", "--max_eval_samples", "20",
        "--per_device_train_batch_size", "16", "--per_device_eval_batch_size", "16",
        "--config_overrides", "embedding_size=24,hidden_size=16,latent_size=8", "--learning_rate", "0.003",
        "--max_train_steps", "4", "--logging_steps", "2", "--checkpointing_steps", "4", "--output_dir", str(out),
        "--aggregate_posterior_components", "3", "--seed", "5",
    ]  # fmt: skip
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    train.main(argv)
    settings = json.loads((out / "config.json").read_text())["aggregate_posterior"]
    assert settings["num_components"] == 3 and settings["seed"] == 5 and settings["num_points"] == 80
    model = AutoModel.from_pretrained(out)
    assert model.aggregate_posterior is not None and model.aggregate_posterior.num_components == 3
    _, fitted_to = load_mixture(out / AGGREGATE_POSTERIOR_FILE)
    results = json.loads((out / "eval_results.json").read_text())
    assert fitted_to == weights_fingerprint(out) == results["weights_sha256"]  # the results still name the weights
    marker = json.loads((out / ".twrvae_train.json").read_text())
    assert AGGREGATE_POSTERIOR_FILE in marker["model_files"]
    assert not list(out.glob(".*tmp*"))
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert len(model.sample(2, tokenizer, sampler="aggregate", **TOKENS)) == 2

    # a finished run resumed with another number of components: no more training, a new mixture
    weights = weights_fingerprint(out)
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    resumed = [*argv[:-4], "--aggregate_posterior_components", "2", "--seed", "5", "--resume_from_checkpoint", "latest"]
    train.main(resumed)
    assert weights_fingerprint(out) == weights
    assert AutoModel.from_pretrained(out).aggregate_posterior.num_components == 2

    # publish.py's Hub folder carries it, fitted to the weights published
    hub = build_hub_folder(out, "user/tiny-twrvae", output_dir=tmp_path / "hub")
    _, fitted_to = load_mixture(hub / AGGREGATE_POSTERIOR_FILE)
    assert fitted_to == weights_fingerprint(hub)
    assert json.loads((hub / "config.json").read_text())["aggregate_posterior"]["num_components"] == 2


@pytest.fixture(scope="module")
def saved(tokenizer, lines, tmp_path_factory):
    model = informative(tiny_model("twr-vae", len(tokenizer), seed=2))
    model.generation_config.max_length = 12
    model.fit_aggregate_posterior(lines, tokenizer, num_components=3, seed=0)
    folder = tmp_path_factory.mktemp("aggregate") / "tiny-twrvae"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    bare = folder.parent / "bare"
    tiny_model("twr-vae", len(tokenizer), seed=2).save_pretrained(bare)
    tokenizer.save_pretrained(bare)
    return folder, bare, model


def test_the_pipeline_takes_the_sampler(saved, tokenizer):
    folder, bare, model = saved
    vae = pipeline("text-vae", model=str(folder))
    expected = model.sample(3, tokenizer, sampler="aggregate", generator=torch.Generator().manual_seed(2), **TOKENS)
    assert vae.sample(3, seed=2, sampler="aggregate", **TOKENS) == expected
    assert vae.sample(3, seed=2, **TOKENS) == model.sample(3, tokenizer, generator=torch.Generator().manual_seed(2),
                                                           **TOKENS)  # fmt: skip
    with pytest.raises(ValueError, match="no aggregate-posterior mixture"):
        pipeline("text-vae", model=str(bare)).sample(2, sampler="aggregate")


def run_cli(args, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    status = cli.main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_the_sample_command_takes_the_sampler(saved, tokenizer, capsys, monkeypatch):
    folder, bare, model = saved
    status, out, _ = run_cli(["sample", folder, "-n", 3, "--sampler", "aggregate", "--seed", 4,
                              "--max-new-tokens", 8], capsys, monkeypatch)  # fmt: skip
    assert status == 0
    expected = model.sample(3, tokenizer, sampler="aggregate", generator=torch.Generator().manual_seed(4), **TOKENS)
    assert out.splitlines() == expected
    status, _, err = run_cli(["sample", bare, "--sampler", "aggregate"], capsys, monkeypatch)
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert "--sampler aggregate" in err and "fit_aggregate_posterior" in err


def test_the_demo_page_samples_either_way(saved, tokenizer):
    pytest.importorskip("gradio")
    spec = importlib.util.spec_from_file_location("twrvae_demo_app_sampler", REPO_ROOT / "demo" / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    folder, bare, model = saved
    app = module.DemoApp(module.load_pipeline(folder, device="cpu"), evaluation_texts=[])
    output, message = app.sample(3, seed=4, max_new_tokens=8, sampler="aggregate posterior")
    expected = model.sample(3, tokenizer, sampler="aggregate", generator=torch.Generator().manual_seed(4), **TOKENS)
    assert output.splitlines() == expected and "aggregate posterior" in message
    bare_app = module.DemoApp(module.load_pipeline(bare, device="cpu"), evaluation_texts=[])
    output, message = bare_app.sample(2, seed=4, max_new_tokens=8, sampler="aggregate posterior")
    assert output == "" and "fit_aggregate_posterior" in message
    assert math.isfinite(len(module.build_demo(app).blocks))  # the page builds with the sampler choice
