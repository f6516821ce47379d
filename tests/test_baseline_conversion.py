"""benchmarks/baseline_conversion.py: the weight conversion into the BN-VAE authors' modules, the in-memory shims for
the authors' code, and (where `.reference/` holds that code) the comparisons themselves on tiny models."""

import importlib.util
import sys
import types

import pytest
import torch

from helpers import REPO_ROOT, tiny_model

BENCHMARKS = REPO_ROOT / "benchmarks"
VOCAB = 20


def _load_script():
    sys.path.insert(0, str(BENCHMARKS))  # the script imports its sibling `environment`, as the benchmarks do
    try:
        spec = importlib.util.spec_from_file_location(
            "twrvae_test_baseline_conversion", BENCHMARKS / "baseline_conversion.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCHMARKS))


bc = _load_script()
REFERENCE_DIR = bc.DEFAULT_REFERENCE_DIR
needs_bn_vae = pytest.mark.skipif(
    bool(bc.missing_reference_files(REFERENCE_DIR, "bn-vae")), reason="the BN-VAE authors' code is not in .reference/"
)
needs_sa_vae = pytest.mark.skipif(
    bool(bc.missing_reference_files(REFERENCE_DIR, "sa-vae")), reason="the SA-VAE authors' code is not in .reference/"
)


def bn_model(seed=0):
    return bc.zero_unmatched_biases(tiny_model("bn-vae", VOCAB, seed=seed))


def authors_encoder_shapes(vocab, ni, nh, nz):
    """The state dict of BN:modules/encoders/enc_lstm.py's GaussianLSTMEncoder, written out from its __init__."""
    return {
        "embed.weight": (vocab, ni),
        "lstm.weight_ih_l0": (4 * nh, ni),
        "lstm.weight_hh_l0": (4 * nh, nh),
        "lstm.bias_ih_l0": (4 * nh,),
        "lstm.bias_hh_l0": (4 * nh,),
        "linear.weight": (2 * nz, nh),  # nn.Linear(enc_nh, 2 * nz, bias=False)
        "mu_bn.weight": (nz,),
        "mu_bn.bias": (nz,),
        "mu_bn.running_mean": (nz,),
        "mu_bn.running_var": (nz,),
        "mu_bn.num_batches_tracked": (),
    }


def authors_decoder_shapes(vocab, ni, nh, nz):
    """The state dict of BN:modules/decoders/dec_lstm.py's LSTMDecoder, written out from its __init__."""
    return {
        "embed.weight": (vocab, ni),
        "trans_linear.weight": (nh, nz),
        "lstm.weight_ih_l0": (4 * nh, ni + nz),
        "lstm.weight_hh_l0": (4 * nh, nh),
        "lstm.bias_ih_l0": (4 * nh,),
        "lstm.bias_hh_l0": (4 * nh,),
        "pred_linear.weight": (vocab, nh),
        "loss.weight": (vocab,),  # nn.CrossEntropyLoss(weight=vocab_mask)
    }


def test_encoder_conversion_gives_every_authors_tensor_its_shape_and_values():
    model = bn_model()
    config = model.config
    state = bc.bn_vae_encoder_state(model.state_dict(), config)
    expected = authors_encoder_shapes(VOCAB, config.embedding_size, config.hidden_size, config.latent_size)
    assert {key: tuple(value.shape) for key, value in state.items()} == expected
    assert torch.equal(state["linear.weight"][: config.latent_size], model.encoder.mean.weight)
    assert torch.equal(state["linear.weight"][config.latent_size :], model.encoder.logvar.weight)
    assert torch.all(state["mu_bn.weight"] == config.posterior_mean_batch_norm_gamma)
    assert torch.equal(state["lstm.weight_hh_l0"], model.encoder.layers[0].weight_hh_l0)


def test_decoder_conversion_gives_every_authors_tensor_its_shape_and_values():
    model = bn_model()
    config = model.config
    state = bc.bn_vae_decoder_state(model.state_dict(), config)
    expected = authors_decoder_shapes(VOCAB, config.embedding_size, config.hidden_size, config.latent_size)
    assert {key: tuple(value.shape) for key, value in state.items()} == expected
    assert torch.equal(state["trans_linear.weight"], model.decoder.init_state.weight)
    assert torch.equal(state["pred_linear.weight"], model.decoder.lm_head.weight)
    assert torch.all(state["loss.weight"] == 1)


def test_conversion_refuses_a_bias_the_authors_layer_lacks():
    model = tiny_model("bn-vae", VOCAB)
    with torch.no_grad():
        model.encoder.logvar.bias.fill_(-2.0)
        model.decoder.lm_head.bias.fill_(0.5)
    with pytest.raises(ValueError, match="encoder.logvar.bias"):
        bc.bn_vae_encoder_state(model.state_dict(), model.config)
    with pytest.raises(ValueError, match="decoder.lm_head.bias"):
        bc.bn_vae_decoder_state(model.state_dict(), model.config)
    bc.zero_unmatched_biases(model)
    bc.bn_vae_encoder_state(model.state_dict(), model.config)
    bc.bn_vae_decoder_state(model.state_dict(), model.config)


def test_encoder_conversion_needs_the_batch_norm():
    model = bc.zero_unmatched_biases(tiny_model("vae-lstm", VOCAB))
    with pytest.raises(ValueError, match="bn-vae"):
        bc.bn_vae_encoder_state(model.state_dict(), model.config)


def test_reference_modules_load_from_files_with_relative_imports_and_no_sys_path_change(tmp_path):
    root = tmp_path / "fake"
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("raise RuntimeError('an __init__ ran')\n")
    (root / "pkg" / "sub" / "__init__.py").write_text("raise RuntimeError('an __init__ ran')\n")
    (root / "pkg" / "helpers.py").write_text("VALUE = 41\n")
    (root / "pkg" / "sub" / "leaf.py").write_text("from ..helpers import VALUE\nANSWER = VALUE + 1\n")
    path_before = list(sys.path)
    try:
        module = bc.load_reference_module(tmp_path, "fake", "pkg/sub/leaf.py")
        assert module.ANSWER == 42
        assert module.__name__ == "twrvae_reference_fake.pkg.sub.leaf"
        assert bc.load_reference_module(tmp_path, "fake", "pkg/sub/leaf.py") is module
        assert sys.path == path_before
    finally:
        for name in [name for name in sys.modules if name.startswith("twrvae_reference_fake")]:
            del sys.modules[name]


def test_torch_stand_in_serves_the_given_draws_and_is_undone():
    module = types.SimpleNamespace(torch=torch)
    draws = [torch.full((2, 3), 1.0), torch.full((2, 3), 2.0)]
    with bc.replaced_torch(module, cuda=types.SimpleNamespace(FloatTensor=bc._Draws(draws))):
        assert module.torch is not torch
        assert module.torch.zeros is torch.zeros  # everything else is torch's own
        assert torch.equal(module.torch.cuda.FloatTensor(torch.Size([2, 3])).normal_(0, 1), draws[0])
        assert torch.equal(module.torch.cuda.FloatTensor(2, 3).normal_(0, 1), draws[1])
    assert module.torch is torch
    with pytest.raises(ValueError, match="noise of shape"):
        bc._Draws([torch.zeros(2, 3)])(torch.Size([4, 3]))
    with pytest.raises(KeyError), bc.replaced_torch(module, tanh=lambda x: x):
        raise KeyError("undone on an error too")
    assert module.torch is torch


def test_random_batches_are_equal_length_sentences():
    batches, description = bc.sentence_batches(None, REPO_ROOT, 5, 3, VOCAB)
    assert [tuple(ids.shape) for ids in batches] == [(5, 10), (5, 11), (5, 12)]
    for ids in batches:
        assert torch.all(ids[:, 0] == 2) and torch.all(ids[:, -1] == 3)
        assert torch.all(ids[:, 1:-1] >= 4) and torch.all(ids < VOCAB)
    assert "random ids" in description


def _batches(batch_size=8, count=3):
    batches, _ = bc.sentence_batches(None, REPO_ROOT, batch_size, count, VOCAB, seed=1)
    return batches


@needs_bn_vae
def test_bn_vae_encoder_matches_the_authors_in_train_and_eval_mode():
    model = bn_model().double()
    result = bc.compare_bn_vae_encoder(model, _batches(), REFERENCE_DIR)
    for mode in ("train", "eval"):
        assert max(result[mode].values()) < 1e-6, result
    assert result["running statistics"] < 1e-9
    assert model.encoder.mean_batch_norm.num_batches_tracked.item() == 3  # the train batches ran in the package too


@needs_bn_vae
def test_bn_vae_encoder_comparison_sees_a_different_gamma():
    model = bn_model().double()
    reference_state = bc.bn_vae_encoder_state

    def wrong_gamma(state, config):
        out = reference_state(state, config)
        out["mu_bn.weight"] = out["mu_bn.weight"] * 0.5
        return out

    bc.bn_vae_encoder_state = wrong_gamma
    try:
        result = bc.compare_bn_vae_encoder(model, _batches(), REFERENCE_DIR)
    finally:
        bc.bn_vae_encoder_state = reference_state
    assert result["train"]["mean"] > 1e-2


@needs_bn_vae
def test_bn_vae_decoder_differs_only_by_its_initial_state():
    model = bn_model().double()
    with torch.no_grad():
        model.decoder.init_state.weight.mul_(20.0)  # a z-dependent start, where tanh matters
    result = bc.compare_bn_vae_decoder(model, _batches(), REFERENCE_DIR)
    assert result["h_0 = c_0"] < 1e-4  # the package's loss is float32 even in float64
    assert result["as written"] > 1e-2


@needs_sa_vae
def test_sa_vae_refinement_matches_the_authors_without_clipping():
    model = bc.zero_unmatched_biases(tiny_model("sa-vae", VOCAB)).double()
    ids = _batches(batch_size=6, count=1)[0]
    result = bc.compare_sa_vae_refinement(model, ids, REFERENCE_DIR, max_grad_norm=0.0, authors_loss="dtype")
    assert result["mean"] < 1e-6 and result["logvar"] < 1e-6 and result["elbo"] < 1e-4, result
    # the authors' finite differences (r = 1e-5) against the exact gradient through the 20 steps
    for key in ("grad_mean", "grad_logvar", "grad_decoder"):
        assert 0 < result[key] < 1e-3, (key, result)
    assert result["package_rows_clipped"] == 0 and result["authors_steps_clipped"] == 0
    exact = bc.compare_sa_vae_refinement(model, ids, REFERENCE_DIR, max_grad_norm=0.0)
    assert exact["mean"] < 1e-12 and exact["logvar"] < 1e-12 and exact["elbo"] < 1e-9, exact


@needs_sa_vae
def test_sa_vae_refinement_differs_where_the_clip_engages():
    model = bc.zero_unmatched_biases(tiny_model("sa-vae", VOCAB)).double()
    with torch.no_grad():
        model.decoder.init_state.weight.mul_(20.0)
        model.decoder.lm_head.weight.mul_(5.0)
    ids = _batches(batch_size=6, count=1)[0]
    result = bc.compare_sa_vae_refinement(model, ids, REFERENCE_DIR, max_grad_norm=0.05)
    assert result["package_rows_clipped"] > 0 and result["authors_steps_clipped"] > 0
    assert result["mean"] > 1e-4
