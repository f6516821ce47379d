"""The BN-VAE and SA-VAE options against their authors' code, by weight conversion.

    python benchmarks/baseline_conversion.py [--model_dir DIR] [--reference_dir .reference] [--batch_size 32]
        [--num_batches 4] [--quick]

(`--quick`: 2 BN-VAE batches and SA-VAE without clipping only; about 20 s on one CPU thread; the full run about 1
minute with a 256/256/32 model.) The exit status is 1 when a compared row fails.

The authors' code is not part of this repository (`.reference/` is git-ignored); clone it at the commits the
package cites (`git clone` of a local mirror works the same):

    git clone https://github.com/valdersoul/bn-vae .reference/bn-vae && git -C .reference/bn-vae checkout b248193
    git clone https://github.com/harvardnlp/sa-vae .reference/sa-vae && git -C .reference/sa-vae checkout e5187a2

The files read: BN-VAE `modules/utils.py`, `modules/encoders/{enc_lstm,gaussian_encoder,encoder,encoder_vmf}.py`,
`modules/decoders/{dec_lstm,decoder,decoder_helper}.py` (imported as a package of their own, without running the
`__init__.py` files, which import the whole model zoo); SA-VAE `optim_n2n.py` and `utils.py`. Nothing changes
`sys.path`; the authors' modules live in `sys.modules` under names of their own (`twrvae_reference_*`). A missing
folder skips its checks with a message. The lagging-encoder code (jxhe/vae-lagging-encoder) is a training loop,
compared nowhere here.

The package model is a preset (`bn-vae`, `sa-vae`) at the sizes of `--model_dir` with its weights (a trained model
such as the demo's; without it, a fresh one at 256/256/32 over random ids), dropout 0. The authors' layers have no
bias where the package's have one (BN-VAE's posterior layer and output layer), so those biases are zeroed in the
compared model (`zero_unmatched_biases`); everything else is copied as it is. Sentences: equal-length batches of
`--model_dir`'s tokenisation of E2E's test split (the authors' batches are of one length; their encoders read no
padding), or random ids.

Checks (max abs difference over every sentence and dimension, or a relative one ||a - b|| / ||b||), in float32
and float64. A row with a tolerance fails above it: 1e-4 for means, log-variances and KLs in float32, 5e-4 for a
per-sentence loss (a sum over its tokens; the package computes it in float32 even in a float64 model), 1e-5 for
BN-VAE in float64 (torch's own nn.BatchNorm1d CPU kernel is ~4e-8 off the exact formula, the package ~1e-15),
1e-9 for the SA-VAE refinement in float64, 1e-3 (relative) for the finite-difference gradient in float64. Rows
without one are reported, with the reason: the authors' decoder as written, the SA-VAE rows where a clip engaged,
and the float32 finite-difference gradients (float32 rounding of the gradient, divided by r = 1e-5, is a percent
or more of it: a property of the authors' method, not of the package).

1. BN-VAE encoder: the authors' `GaussianLSTMEncoder` with `mu_bn` (BN:modules/encoders/enc_lstm.py:146-212; the
   KL of GaussianEncoderBase.encode, BN:modules/encoders/gaussian_encoder.py:62) against `bn-vae`'s `encode()`:
   posterior mean, log-variance and KL per sentence, in training mode (batch statistics; `--num_batches` batches in
   both, which also update the running statistics), then the running statistics themselves, then evaluation mode
   (running statistics) on the same batches.
2. SA-VAE refinement: the authors' `OptimN2N` (SA:optim_n2n.py) with train_text.py's settings (20 steps, lr 1,
   momentum 0.5, `--svi_max_grad_norm` 5, finite differences r = 1e-5, decoder gradients accumulated as
   `--train_n2n 1` does), applied to the package model's own loss as a function of (mean, logvar) in the authors'
   form (SA:train_text.py:114-120: batch mean of -log p(x | z) + KL, z = noise * std + mean), against the package's
   own `forward(..., refine_steps=20)` (semi_amortized.py). The same noise: the package draws one `randn_like(mean)`
   per step and one for the decoded latent, from the global generator (evaluation mode draws nothing else); the
   script seeds it, draws the same K + 1 tensors itself, and the authors' `torch.cuda.FloatTensor(...).normal_()`
   (SA:optim_n2n.py:82) is served them in order by a stand-in for `torch` in that module's namespace (it is also
   what lets the code run without CUDA). `svi_batch_size` is the batch's size, so the package's per-sentence step
   is the authors' batch-mean one. Rows: refined mean, log-variance and per-sentence refined -ELBO with clipping
   off in both (they must agree to float precision), and with the authors' clip 5 (the authors clip the batch's
   gradient matrix jointly at 5, SA:optim_n2n.py:94-96, the package each sentence's row at 5 / sqrt(B): where
   either engages they differ, and the row says how often each clipped, counted by a subclass of OptimN2N and a
   counting wrapper around `semi_amortized.clip_rows` for that call); the gradient into the encoder's (mean,
   logvar) and into the decoder's weights, the authors' finite-difference backward against the package's exact
   one, as a relative difference (float64, with the authors' loss's log-softmax in float64 too, isolates the
   finite-difference error from float32 rounding divided by r). With clipping on, the authors' backward clips
   inside its finite differences as well (SA:optim_n2n.py:141-142: the perturbed gradients of (mean, logvar) and
   of every decoder weight, jointly at 5, from which it subtracts the unperturbed, unclipped ones; then 155-156 and
   164-165), so its gradient is no longer the derivative of its own forward steps; those rows are reported.
3. Decoder: the authors' `LSTMDecoder` (BN:modules/decoders/dec_lstm.py:17-181) with the package's decoder weights,
   per-sentence -log p(x | z) against `model(input_ids, latents=z)`. No package config reproduces it: the
   authors start from h_0 = tanh(c_0), c_0 = W z (dec_lstm.py:132-133), the package from h_0 = c_0 = W z, and
   their output layer has no bias (the package's bias is zeroed here). The row "as written" shows the size of that
   difference; the row "tanh removed" runs the same authors' code with `torch.tanh` replaced by the identity in
   dec_lstm's namespace (in memory, for this row only) to show that the initial state is the only difference in
   the forward pass. Input dropout, z at every input and output dropout (`decoder_output_dropout`) the package
   has; with dropout 0 they do not enter.

Prints a table, writes benchmarks/results/baseline_conversion-cpu.json.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import types
import warnings
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from environment import add_common_arguments, describe, load_module_file, results_path

from modeling_twrvae import TWRVAEConfig, TWRVAEModel, semi_amortized
from modeling_twrvae.file_utils import atomic_write_json

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REFERENCE_DIR = REPO_ROOT / ".reference"
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"
BN_VAE_FILES = (
    "modules/utils.py",
    "modules/encoders/enc_lstm.py",
    "modules/encoders/gaussian_encoder.py",
    "modules/encoders/encoder.py",
    "modules/encoders/encoder_vmf.py",
    "modules/decoders/dec_lstm.py",
    "modules/decoders/decoder.py",
    "modules/decoders/decoder_helper.py",
)
SA_VAE_FILES = ("optim_n2n.py", "utils.py")
# SA:train_text.py:55-63 (--svi_steps, --svi_lr1/2, --eps, --momentum, --svi_max_grad_norm)
SA_SETTINGS = {"steps": 20, "learning_rate": 1.0, "momentum": 0.5, "max_grad_norm": 5.0, "eps": 1e-5}
# a per-sentence loss is a float32 sum over its tokens (~60 nats on E2E), also in a float64 model: 5e-4 is ~1e-5 of it
LOSS_TOLERANCE = 5e-4


# ----- the authors' code, loaded from its files -----


def missing_reference_files(reference_dir: Path, name: str) -> list[str]:
    files = BN_VAE_FILES if name == "bn-vae" else SA_VAE_FILES
    return [path for path in files if not (Path(reference_dir) / name / path).is_file()]


def load_reference_module(reference_dir: Path, name: str, path: str):
    """`reference_dir/name/path` as a module named `twrvae_reference_<name>.<dotted path>`, loaded from its file; the
    folders above it become packages that run no `__init__.py`, so the file's relative imports (`from ..utils
    import ...`) load just the sibling files they name. Nothing changes sys.path."""
    root = Path(reference_dir) / name
    base = "twrvae_reference_" + name.replace("-", "_")
    parts = Path(path).with_suffix("").parts
    package = base
    if package not in sys.modules:
        module = types.ModuleType(package)
        module.__path__ = [str(root)]
        sys.modules[package] = module
    for i, part in enumerate(parts[:-1]):
        package = f"{package}.{part}"
        if package not in sys.modules:
            module = types.ModuleType(package)
            module.__path__ = [str(root.joinpath(*parts[: i + 1]))]
            sys.modules[package] = module
    return load_module_file(f"{package}.{parts[-1]}", root / path)


class _TorchStandIn:
    """`torch` as a module's global name sees it, with a few attributes replaced (everything else is torch's own)."""

    def __init__(self, **replaced):
        self.__dict__.update(replaced)

    def __getattr__(self, name):
        return getattr(torch, name)


@contextlib.contextmanager
def replaced_torch(module, **replaced):
    """Within the block, `module`'s global `torch` is a stand-in with `replaced` attributes (in memory only)."""
    original = module.torch
    module.torch = _TorchStandIn(**replaced)
    try:
        yield
    finally:
        module.torch = original


class _Draws:
    """`torch.cuda.FloatTensor(size)` for SA:optim_n2n.py:82: `.normal_(0, 1)` gives the next of the given draws."""

    def __init__(self, draws):
        self.draws = iter(draws)

    def __call__(self, *size):
        draw = next(self.draws)
        if tuple(draw.shape) != tuple(torch.Size(*size) if len(size) == 1 else size):
            raise ValueError(f"noise of shape {tuple(draw.shape)} served for a tensor of size {size}")
        return SimpleNamespace(normal_=lambda mean=0.0, std=1.0: draw)


# ----- weight conversion -----


def zero_unmatched_biases(model: TWRVAEModel) -> TWRVAEModel:
    """Zero the biases the authors' layers lack: the posterior layers' (BN:enc_lstm.py:163) and the output layer's
    (BN:dec_lstm.py:43)."""
    with torch.no_grad():
        for layer in (model.encoder.mean, model.encoder.logvar, model.decoder.lm_head):
            layer.bias.zero_()
    return model


def _no_bias(state: dict, key: str) -> None:
    if key in state and torch.any(state[key] != 0):
        raise ValueError(
            f"`{key}` is not zero, and the authors' layer has no bias: zero it first (`zero_unmatched_biases`)."
        )


def bn_vae_encoder_state(state: dict, config: TWRVAEConfig) -> dict:
    """The authors' GaussianLSTMEncoder state dict (BN:modules/encoders/enc_lstm.py:155-165) from the package's:
    one LSTM, `linear` = [mean; logvar] without bias, `mu_bn` with weight gamma."""
    if config.num_layers != 1 or config.rnn_type != "lstm" or config.posterior_input != "h":
        raise ValueError("BN-VAE's encoder is a one-layer LSTM with the posterior from h (the `bn-vae` preset).")
    if config.posterior_mean_batch_norm_gamma is None:
        raise ValueError("The model has no BN-VAE batch norm: build it from the `bn-vae` preset.")
    for key in ("encoder.mean.bias", "encoder.logvar.bias"):
        _no_bias(state, key)
    out = {"embed.weight": state["encoder.embed_tokens.weight"]}
    for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
        out[f"lstm.{name}"] = state[f"encoder.layers.0.{name}"]
    out["linear.weight"] = torch.cat([state["encoder.mean.weight"], state["encoder.logvar.weight"]], dim=0)
    bias = state["encoder.mean_batch_norm.bias"]
    out["mu_bn.weight"] = torch.full_like(bias, config.posterior_mean_batch_norm_gamma)
    out["mu_bn.bias"] = bias
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        out[f"mu_bn.{name}"] = state[f"encoder.mean_batch_norm.{name}"]
    return {key: value.detach().clone() for key, value in out.items()}


def bn_vae_decoder_state(state: dict, config: TWRVAEConfig) -> dict:
    """The authors' LSTMDecoder state dict (BN:modules/decoders/dec_lstm.py:28-43) from the package's."""
    if config.num_layers != 1 or config.rnn_type != "lstm" or config.decoder_init != "linear":
        raise ValueError(
            "BN-VAE's decoder is a one-layer LSTM started from a linear map of z (`decoder_init='linear'`)."
        )
    if config.decoder_latent_input != "full" or config.decoder_input != "standard":
        raise ValueError("BN-VAE's decoder reads the word and all of z at every step.")
    _no_bias(state, "decoder.lm_head.bias")
    out = {
        "embed.weight": state["decoder.embed_tokens.weight"],
        "trans_linear.weight": state["decoder.init_state.weight"],
        "pred_linear.weight": state["decoder.lm_head.weight"],
        # the buffer of its nn.CrossEntropyLoss(weight=vocab_mask), all ones (dec_lstm.py:45-47)
        "loss.weight": torch.ones(config.vocab_size, dtype=state["decoder.lm_head.weight"].dtype),
    }
    for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
        out[f"lstm.{name}"] = state[f"decoder.rnn.{name}"]
    return {key: value.detach().clone() for key, value in out.items()}


def bn_vae_args(config: TWRVAEConfig) -> SimpleNamespace:
    """The argparse fields the authors' encoder and decoder read (BN:text_anneal_fb.py:27,64, config/config_*.py;
    text_anneal_fb.py:215,220 builds GaussianLSTMEncoder and LSTMDecoder from them)."""
    return SimpleNamespace(
        ni=config.embedding_size,
        enc_nh=config.hidden_size,
        dec_nh=config.hidden_size,
        nz=config.latent_size,
        gamma=config.posterior_mean_batch_norm_gamma or 0.0,
        fix_var=-1,  # the default: no fixed variance (enc_lstm.py:212)
        device="cpu",
        dec_dropout_in=0.0,
        dec_dropout_out=0.0,
    )


def _keep(_parameter) -> None:
    """The authors' `model_init` / `emb_init`: nothing, the weights are copied in."""


# ----- the models and the sentences -----


def package_model(preset: str, model_dir: str | None, seed: int = 0, vocab_size: int = 496) -> TWRVAEModel:
    """`preset` at `model_dir`'s sizes with its weights (every tensor whose name and shape match), dropout 0;
    without `model_dir`, a fresh one (256/256/32). Biases the authors lack are zeroed."""
    sizes = {"embedding_size": 256, "hidden_size": 256, "latent_size": 32, "vocab_size": vocab_size}
    trained = None
    if model_dir is not None:
        trained = TWRVAEModel.from_pretrained(model_dir)
        sizes = {key: getattr(trained.config, key) for key in sizes}
    config = TWRVAEConfig.from_preset(preset, **sizes, dropout=0.0, word_dropout=0.0)
    torch.manual_seed(seed)
    model = TWRVAEModel(config)
    if trained is not None:
        own = model.state_dict()
        matched = {k: v for k, v in trained.state_dict().items() if k in own and own[k].shape == v.shape}
        model.load_state_dict(matched, strict=False)
    return zero_unmatched_biases(model).eval()


def sentence_batches(
    model_dir: str | None, data_dir: Path, batch_size: int, num_batches: int, vocab_size: int, seed: int = 0
) -> tuple[list[torch.Tensor], str]:
    """`num_batches` (batch_size, length) batches of equal-length sentences: E2E test texts tokenised by
    `model_dir`'s tokenizer (the most frequent lengths), or random ids `<bos> w.. <eos>` of lengths 10, 11, ..."""
    if model_dir is not None and (Path(data_dir) / "e2e").is_dir():
        from modeling_twrvae.commands.tokenizer_files import load_tokenizer
        from modeling_twrvae.data.e2e import load_e2e, was_delexicalized

        tokenizer = load_tokenizer(model_dir)
        texts = load_e2e("test", str(data_dir), delexicalized=was_delexicalized(model_dir))["text"]
        by_length: dict[int, list[list[int]]] = {}
        for ids in tokenizer(list(texts))["input_ids"]:
            by_length.setdefault(len(ids), []).append(ids)
        lengths = sorted(
            (n for n, rows in by_length.items() if len(rows) >= batch_size), key=lambda n: -len(by_length[n])
        )
        if len(lengths) >= num_batches:
            batches = [torch.tensor(by_length[n][:batch_size]) for n in lengths[:num_batches]]
            return batches, f"E2E test split, {model_dir}'s tokenizer, lengths {lengths[:num_batches]}"
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for i in range(num_batches):
        ids = torch.randint(4, vocab_size, (batch_size, 10 + i), generator=generator)
        ids[:, 0], ids[:, -1] = 2, 3
        batches.append(ids)
    return batches, f"random ids, vocabulary {vocab_size}, lengths {[10 + i for i in range(num_batches)]}"


def max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.detach().double() - b.detach().double()).abs().max().item()


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.detach().double() - b.detach().double()).norm() / b.detach().double().norm()).item()


# ----- 1. BN-VAE's encoder -----


def compare_bn_vae_encoder(model: TWRVAEModel, batches: list[torch.Tensor], reference_dir: Path) -> dict:
    """Max abs differences of the posterior mean, log-variance and KL per sentence, authors' encoder against the
    package's `encode()`: training mode over `batches`, the running statistics after them, evaluation mode."""
    enc_lstm = load_reference_module(reference_dir, "bn-vae", "modules/encoders/enc_lstm.py")
    config = model.config
    reference = enc_lstm.GaussianLSTMEncoder(bn_vae_args(config), config.vocab_size, _keep, _keep)
    reference.load_state_dict(bn_vae_encoder_state(model.state_dict(), config))
    reference.to(model.dtype)
    calls = []
    forward = reference.forward

    def recorded(input):  # encode() calls forward once; keep its (mean, logvar) beside the KL it returns
        calls.append(forward(input))
        return calls[-1]

    reference.forward = recorded
    result = {}
    for mode in ("train", "eval"):
        model.train(mode == "train")
        reference.train(mode == "train")
        differences = {"mean": 0.0, "logvar": 0.0, "kl": 0.0}
        for ids in batches:
            posterior = model.encode(ids)
            _, kl = reference.encode(ids, 1)  # BN:gaussian_encoder.py:47-64
            mean, logvar = calls[-1]
            for key, ours, theirs in (
                ("mean", posterior.mean, mean),
                ("logvar", posterior.logvar, logvar),
                ("kl", posterior.kl(), kl),
            ):
                differences[key] = max(differences[key], max_abs(ours, theirs))
        result[mode] = differences
        if mode == "train":
            norm = model.encoder.mean_batch_norm
            result["running statistics"] = max(
                max_abs(norm.running_mean, reference.mu_bn.running_mean),
                max_abs(norm.running_var, reference.mu_bn.running_var),
            )
    model.eval()
    return result


# ----- 2. SA-VAE's refinement -----


def compare_sa_vae_refinement(
    model: TWRVAEModel,
    ids: torch.Tensor,
    reference_dir: Path,
    max_grad_norm: float,
    seed: int = 0,
    authors_loss: str = "package",
) -> dict:
    """The authors' OptimN2N against the package's `forward(..., refine_steps=K)` on one batch, with the same noise
    (see the module docstring): max abs differences of the refined mean, log-variance and per-sentence -ELBO;
    relative differences of the gradients into the encoder's (mean, logvar) and into the decoder's weights; how many
    of the authors' steps clipped. `authors_loss`: the loss the authors' code refines, `"package"` (the model's own
    `forward(latents=...)` loss) or `"dtype"` (the same sum, log-softmax in the model's dtype: float64 finite
    differences need a loss without float32 rounding)."""
    if authors_loss not in ("package", "dtype"):
        raise ValueError(f"`authors_loss` must be 'package' or 'dtype', got {authors_loss!r}.")
    optim_n2n = load_reference_module(reference_dir, "sa-vae", "optim_n2n.py")
    sa_utils = load_reference_module(reference_dir, "sa-vae", "utils.py")
    steps = SA_SETTINGS["steps"]
    batch, dtype = ids.shape[0], model.dtype
    config = model.config
    config.svi_batch_size = batch
    config.svi_max_grad_norm = max_grad_norm
    config.svi_learning_rate = SA_SETTINGS["learning_rate"]
    config.svi_momentum = SA_SETTINGS["momentum"]
    model.eval()
    decoder_parameters = list(model.decoder.parameters())

    # the package: its own forward pass with refinement, and the exact gradient; `clip_rows` is wrapped (in
    # memory, for this call) only to count the rows it shortens
    rows_clipped = []
    clip_rows = semi_amortized.clip_rows

    def counted_clip_rows(gradient, max_norm):
        rows_clipped.append(int((gradient.detach().norm(dim=-1) + 1e-6 > max_norm).sum()))
        return clip_rows(gradient, max_norm)

    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    semi_amortized.clip_rows = counted_clip_rows
    try:
        output = model(ids, refine_steps=steps, sample_posterior=True, reduction="none", return_logits=False)
    finally:
        semi_amortized.clip_rows = clip_rows
    output.posterior_mean.retain_grad()
    output.posterior_logvar.retain_grad()
    output.loss.mean().backward()
    last = ids.shape[1] - 1  # equal lengths: the decoded latent is the last timestep's
    ours = {
        "mean": output.refined_posterior_mean.detach(),
        "logvar": output.refined_posterior_logvar.detach(),
        "elbo": output.loss.detach(),
        "grad_mean": output.posterior_mean.grad[:, last].clone(),
        "grad_logvar": output.posterior_logvar.grad[:, last].clone(),
        "grad_decoder": torch.cat([p.grad.flatten() for p in decoder_parameters]),
    }
    mean_0 = output.posterior_mean.detach()[:, last]
    logvar_0 = output.posterior_logvar.detach()[:, last]

    # the same draws the package took: one per step, one for the decoded latent
    torch.manual_seed(seed)
    draws = [torch.randn(mean_0.shape, dtype=dtype) for _ in range(steps + 1)]

    def reconstruction(sents, z_samples):
        """-log p(x | z) per sentence: the package's loss, or the same sum from the decoder's logits with the
        log-softmax in the model's dtype (the package's loss is computed in float32 even in a float64 model)."""
        if authors_loss == "package":
            return model(sents, latents=z_samples, reduction="none", return_logits=False).loss
        logits, _ = model.decoder(sents[:, :-1], z_samples)
        return F.cross_entropy(logits.transpose(1, 2), sents[:, 1:], reduction="none").sum(dim=1)

    def variational_loss(input, sents, model, z=None):  # SA:train_text.py:114-120 on the package's decoder
        mean, logvar = input
        z_samples = z.mul(logvar.mul(0.5).exp()) + mean  # SA:models_text.py:64-68
        nll = reconstruction(sents, z_samples).mean()
        return nll + 1.0 * sa_utils.kl_loss_diag(mean, logvar)

    clipped = {"forward": [], "backward": []}

    class RecordedOptimN2N(optim_n2n.OptimN2N):
        """OptimN2N, recording whether each of its clips engaged (`clip_coef < 1`, SA:optim_n2n.py:67-70)."""

        phase = "forward"

        def clip_grad_norm(self, parameters, max_norm, norm_type=2):
            total = sum(p.norm(norm_type) ** norm_type for p in parameters) ** (1.0 / norm_type)
            clipped[self.phase].append(bool(max_norm / (total + 1e-6) < 1))
            super().clip_grad_norm(parameters, max_norm, norm_type)

    model.zero_grad(set_to_none=True)
    with torch.random.fork_rng(devices=[]), replaced_torch(optim_n2n, cuda=SimpleNamespace(FloatTensor=_Draws(draws))):
        meta = RecordedOptimN2N(
            variational_loss,
            model,
            decoder_parameters,
            eps=SA_SETTINGS["eps"],
            lr=[SA_SETTINGS["learning_rate"]] * 2,
            iters=steps,
            momentum=SA_SETTINGS["momentum"],
            acc_param_grads=True,
            max_grad_norm=max_grad_norm,
        )
        mean_svi = mean_0.clone().requires_grad_(True)
        logvar_svi = logvar_0.clone().requires_grad_(True)
        mean_k, logvar_k = meta.forward([mean_svi, logvar_svi], ids)
        meta.phase = "backward"
        # SA:train_text.py:198-207: the decoded latent of q_K, its -ELBO, the gradient back through the steps
        z_samples = draws[steps].mul(logvar_k.mul(0.5).exp()) + mean_k
        nll = reconstruction(ids, z_samples)
        kl = sa_utils.kl_loss_diag(mean_k, logvar_k, average=False)
        var_loss = nll.mean() + kl.mean()
        var_loss.backward(retain_graph=True)
        grad_mean, grad_logvar = meta.backward([mean_k.grad, logvar_k.grad])
    theirs = {
        "mean": mean_k.detach(),
        "logvar": logvar_k.detach(),
        "elbo": (nll + kl).detach(),
        "grad_mean": grad_mean,
        "grad_logvar": grad_logvar,
        "grad_decoder": torch.cat([p.grad.flatten() for p in decoder_parameters]),
    }
    model.zero_grad(set_to_none=True)
    result = {key: max_abs(ours[key], theirs[key]) for key in ("mean", "logvar", "elbo")}
    for key in ("grad_mean", "grad_logvar", "grad_decoder"):
        result[key] = relative(theirs[key], ours[key])
    result["elbo_mean_package"] = ours["elbo"].mean().item()
    result["elbo_mean_authors"] = theirs["elbo"].mean().item()
    result["sentences_elbo_differing_1e-4"] = int(((ours["elbo"] - theirs["elbo"]).abs() > 1e-4).sum())
    # the authors clip twice a step in the forward pass (mean, logvar gradients): a step counts if either clipped
    forward = clipped["forward"]
    result["authors_steps_clipped"] = sum(any(forward[2 * k : 2 * k + 2]) for k in range(len(forward) // 2))
    result["authors_backward_clips_engaged"] = sum(clipped["backward"])
    result["authors_backward_clips"] = len(clipped["backward"])
    # the package clips each sentence's two gradient rows in each step
    result["package_rows_clipped"] = sum(rows_clipped)
    result["package_rows"] = len(rows_clipped) * batch
    return result


# ----- 3. BN-VAE's decoder -----


def compare_bn_vae_decoder(model: TWRVAEModel, batches: list[torch.Tensor], reference_dir: Path, seed: int = 0) -> dict:
    """Max abs difference of -log p(x | z) per sentence, the authors' LSTMDecoder with the package's decoder
    weights against the package: as written (h_0 = tanh(c_0)), and with tanh made the identity (h_0 = c_0)."""
    dec_lstm = load_reference_module(reference_dir, "bn-vae", "modules/decoders/dec_lstm.py")
    config = model.config
    with warnings.catch_warnings():  # its nn.CrossEntropyLoss(reduce=False) (dec_lstm.py:47) warns on torch >= 1
        warnings.simplefilter("ignore", UserWarning)
        reference = dec_lstm.LSTMDecoder(bn_vae_args(config), range(config.vocab_size), _keep, _keep)
    reference.load_state_dict(bn_vae_decoder_state(model.state_dict(), config))
    reference.to(model.dtype).eval()
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    result = {"as written": 0.0, "h_0 = c_0": 0.0, "loss_mean": 0.0}
    with torch.no_grad():
        for ids in batches:
            z = torch.randn((ids.shape[0], config.latent_size), generator=generator, dtype=model.dtype)
            ours = model(ids, latents=z, reduction="none", return_logits=False).loss
            theirs = reference.reconstruct_error(ids, z.unsqueeze(1)).squeeze(1)  # BN:dec_lstm.py:145-181
            with replaced_torch(dec_lstm, tanh=lambda x: x):
                untanhed = reference.reconstruct_error(ids, z.unsqueeze(1)).squeeze(1)
            result["as written"] = max(result["as written"], max_abs(ours, theirs))
            result["h_0 = c_0"] = max(result["h_0 = c_0"], max_abs(ours, untanhed))
            result["loss_mean"] = max(result["loss_mean"], ours.mean().item())
    return result


# ----- the table -----


def run(args) -> dict:
    reference_dir = Path(args.reference_dir)
    rows, skipped, details = [], [], {}
    steps = SA_SETTINGS["steps"]
    vocab = 496
    if args.model_dir is not None:
        vocab = TWRVAEConfig.from_pretrained(args.model_dir).vocab_size
    num_batches = 2 if args.quick else args.num_batches
    batches, data = sentence_batches(args.model_dir, Path(args.data_dir), args.batch_size, num_batches, vocab)

    def row(check, difference, tolerance, kind="max abs", note=""):
        """`tolerance` None: reported, not compared (`note` says why)."""
        passed = None if tolerance is None else bool(difference <= tolerance)
        rows.append(
            {
                "check": check,
                "difference": difference,
                "kind": kind,
                "tolerance": tolerance,
                "passed": passed,
                "note": note,
            }
        )

    for name in ("bn-vae", "sa-vae"):
        missing = missing_reference_files(reference_dir, name)
        if missing:
            skipped.append(f"{name}: {reference_dir / name} lacks {', '.join(missing)} (see the docstring)")
    bn_ready = not missing_reference_files(reference_dir, "bn-vae")
    sa_ready = not missing_reference_files(reference_dir, "sa-vae")
    clips = (0.0,) if args.quick else (0.0, SA_SETTINGS["max_grad_norm"])
    for dtype in (torch.float32, torch.float64):
        tag = str(dtype).replace("torch.", "")
        float64 = dtype == torch.float64
        if bn_ready:
            model = package_model("bn-vae", args.model_dir).to(dtype)
            start = time.perf_counter()
            encoder = compare_bn_vae_encoder(model, batches, reference_dir)
            details[f"bn-vae encoder {tag}"] = {**encoder, "seconds": time.perf_counter() - start}
            # float64: torch's own nn.BatchNorm1d CPU kernel is ~4e-8 off the exact formula (the package ~1e-15)
            tolerance = 1e-5 if float64 else 1e-4
            for mode in ("train", "eval"):
                for key in ("mean", "logvar", "kl"):
                    row(f"BN-VAE encoder {mode} mode: {key} ({tag})", encoder[mode][key], tolerance)
            row(f"BN-VAE running mean/var after them ({tag})", encoder["running statistics"], tolerance)
            decoder = compare_bn_vae_decoder(model, batches, reference_dir)
            details[f"bn-vae decoder {tag}"] = decoder
            row(
                f"BN-VAE decoder -log p(x|z), as written ({tag})",
                decoder["as written"],
                None,
                note="h_0 = tanh(c_0) there, h_0 = c_0 here",
            )
            # the package's loss is float32 even in a float64 model (see `reconstruction` in the SA-VAE comparison)
            row(f"BN-VAE decoder -log p(x|z), tanh removed ({tag})", decoder["h_0 = c_0"], LOSS_TOLERANCE)
        if sa_ready:
            model = package_model("sa-vae", args.model_dir).to(dtype)
            for clip in clips:
                start = time.perf_counter()
                result = compare_sa_vae_refinement(model, batches[0], reference_dir, clip)
                details[f"sa-vae clip {clip:g} {tag}"] = {**result, "seconds": time.perf_counter() - start}
                gradients = result
                if float64:  # finite differences of a loss without float32 rounding
                    gradients = compare_sa_vae_refinement(model, batches[0], reference_dir, clip, authors_loss="dtype")
                    details[f"sa-vae clip {clip:g} {tag}, authors' loss in float64"] = gradients
                label = f"clip {clip:g}" if clip else "no clip"
                engaged = result["authors_steps_clipped"] or result["package_rows_clipped"]
                note = ""
                if engaged:
                    note = (
                        f"clipped: authors {result['authors_steps_clipped']}/{steps} steps (jointly), package "
                        f"{result['package_rows_clipped']}/{result['package_rows']} sentence-steps; "
                        f"{result['sentences_elbo_differing_1e-4']}/{batches[0].shape[0]} sentences' -ELBO differ"
                    )
                for key, what in (("mean", "refined mean"), ("logvar", "refined logvar"), ("elbo", "refined -ELBO")):
                    exact = 1e-9 if float64 else (LOSS_TOLERANCE if key == "elbo" else 1e-4)
                    row(f"SA-VAE {what}, {label} ({tag})", result[key], None if engaged else exact, note=note)
                if float64 and not gradients["authors_backward_clips_engaged"]:
                    gradient_tolerance, note = 1e-3, "loss in float64"
                elif gradients["authors_backward_clips_engaged"]:
                    gradient_tolerance = None
                    note = (
                        f"authors' backward clipped {gradients['authors_backward_clips_engaged']}/"
                        f"{gradients['authors_backward_clips']} times, inside the finite differences"
                    )
                else:
                    gradient_tolerance, note = None, "float32 finite differences (r = 1e-5): their rounding error"
                for key, what in (("grad_mean", "mean"), ("grad_logvar", "logvar"), ("grad_decoder", "decoder")):
                    row(
                        f"SA-VAE gradient into the {what}, {label} ({tag})",
                        gradients[key],
                        gradient_tolerance,
                        "relative",
                        note,
                    )
    return {"rows": rows, "skipped": skipped, "details": details, "data": data}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument(
        "--model_dir", default=None, help="A saved TWRVAEModel whose sizes, weights and tokenizer to use."
    )
    parser.add_argument("--reference_dir", default=str(DEFAULT_REFERENCE_DIR), help="Holds bn-vae/ and sa-vae/.")
    parser.add_argument("--data_dir", default=str(DEFAULT_DATA_DIR))
    parser.add_argument("--batch_size", type=int, default=32, help="Sentences per batch (the authors' 32).")
    parser.add_argument(
        "--num_batches", type=int, default=4, help="BN-VAE's training-mode batches (--quick: 2, and no SA-VAE clip)."
    )
    args = parser.parse_args(argv)
    if args.device != "cpu":
        raise SystemExit("--device: this comparison runs the authors' code on CPU; use --device cpu.")
    torch.manual_seed(0)
    start = time.perf_counter()
    outcome = run(args)
    for line in outcome["skipped"]:
        print(f"skipped {line}")
    width = max((len(r["check"]) for r in outcome["rows"]), default=5)
    print(f"{'check':<{width}}  {'difference':>10}  {'tolerance':>9}  result")
    for r in outcome["rows"]:
        tolerance = "-" if r["tolerance"] is None else f"{r['tolerance']:.0e}"
        verdict = f"reported: {r['note']}" if r["passed"] is None else ("pass" if r["passed"] else "FAIL")
        if r["passed"] is not None and r["note"]:
            verdict += f" ({r['note']})"
        print(f"{r['check']:<{width}}  {r['difference']:10.3e}  {tolerance:>9}  {verdict}")
    result = {
        "benchmark": "baseline_conversion",
        "environment": describe("cpu"),
        "settings": {
            "model_dir": args.model_dir,
            "data": outcome["data"],
            "batch_size": args.batch_size,
            "num_batches": args.num_batches,
            "sa_vae": SA_SETTINGS,
            "references": {"bn-vae": "valdersoul/bn-vae@b248193", "sa-vae": "harvardnlp/sa-vae@e5187a2"},
        },
        "rows": outcome["rows"],
        "skipped": outcome["skipped"],
        "details": outcome["details"],
        "seconds": time.perf_counter() - start,
    }
    output = atomic_write_json(results_path(args.results_dir, "baseline_conversion", "cpu"), result)
    print(f"wrote {output}")
    return 0 if all(r["passed"] is not False for r in outcome["rows"]) else 1


if __name__ == "__main__":
    sys.exit(main())
