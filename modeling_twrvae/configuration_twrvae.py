"""Configuration of the TWR-VAE family (TWR-VAE, its -mean/-sum variants, HR-VAE and the vanilla VAE-RNN)."""

from __future__ import annotations

import contextlib
import copy
import math

from transformers import PretrainedConfig

_RNN_TYPES = ("lstm", "gru", "rnn")
_POSTERIOR_INPUTS = ("h", "hc")
_LATENT_MODES = ("last", "mean", "sum")
_KL_REGULARIZERS = ("timestep_wise", "last")
_DECODER_INPUTS = ("standard", "inputless")
_DECODER_INITS = ("linear", "split")
_DECODER_LATENT_INPUTS = ("full", "last_layer")
# The reference code of the baselines, cited as `repo:path:line` in the docstring below:
#   BN = valdersoul/bn-vae at b2481937, SA = harvardnlp/sa-vae at e5187a21.
BATCH_NORM_EPS = 1e-5  # nn.BatchNorm1d's defaults, which BN-VAE keeps (BN:modules/encoders/enc_lstm.py:164)
BATCH_NORM_MOMENTUM = 0.1

# Named settings of the papers. Every preset starts from the class defaults (TWR-VAE, language modelling) and
# overrides only what differs, so a preset reads as "what this model changes".
PRESETS: dict[str, dict] = {
    "twr-vae": {},
    "twr-vae-mean": {"latent_mode": "mean"},
    "twr-vae-sum": {"latent_mode": "sum"},
    "twr-vae-last-50": {"kl_timestep_fraction": 0.5},
    # HR-VAE's code: z has the size of [h; c] over all layers (2 x layers x hidden, derived by `from_preset` from
    # the sizes given), decoder layer l starts from its own slice of z, and each step reads the last layer's slice.
    "hr-vae": {
        "num_layers": 2,
        "posterior_input": "hc",
        "decoder_init": "split",
        "decoder_latent_input": "last_layer",
    },
    "hr-vae-inputless": {
        "num_layers": 2,
        "posterior_input": "hc",
        "decoder_init": "split",
        "decoder_latent_input": "last_layer",
        "decoder_input": "inputless",
    },
    "vae-lstm": {"kl_regularizer": "last"},
    # BN-VAE (Zhu et al., 2020) as TWR-VAE Table 2's "BN-VAE (0.7)": the vae-lstm model with the batch-normalised
    # posterior mean of BN:modules/encoders/enc_lstm.py:164-165,185,206-208 (see `posterior_mean_batch_norm_gamma`).
    "bn-vae": {"kl_regularizer": "last", "posterior_mean_batch_norm_gamma": 0.7},
    # SA-VAE (Kim et al., 2018): the vae-lstm model with the authors' 20 refinement steps (SA:train_text.py:55);
    # every other svi_* value is the field's default, which is the authors' own (see `svi_steps`).
    "sa-vae": {"kl_regularizer": "last", "svi_steps": 20},
}


class CheckedConfigMixin:
    """Runs the configuration's `_check` on every way a configuration is built or changed, not only in `__init__`.

    transformers builds a loaded configuration from `config.json` and then sets the keyword overrides given to
    `from_pretrained` one by one with `setattr`; `update` and `update_from_string` do the same. Here the overrides of
    `from_dict` go into the constructor (checked together), `update` and `update_from_string` check once after all
    their changes (and undo them on an error), and any other assignment to a field is checked at once (and undone).
    """

    def _check(self) -> None:
        raise NotImplementedError

    @classmethod
    def _checked_fields(cls) -> frozenset[str]:
        names = set()
        for klass in cls.__mro__:
            if klass.__name__ in ("PretrainedConfig", "PreTrainedConfig"):
                break
            names.update(klass.__dict__.get("__annotations__", {}))
        return frozenset(names)

    def __setattr__(self, key, value):
        checking = (
            self.__dict__.get("_post_init_done")
            and not self.__dict__.get("_checks_deferred")
            and key in self._checked_fields()
        )
        if not checking:
            super().__setattr__(key, value)
            return
        with self._undone_on_error():
            super().__setattr__(key, value)
            self._check()

    @contextlib.contextmanager
    def _undone_on_error(self):
        """Check once at the end; on a `ValueError`, give every checked field its earlier value back."""
        before = {name: self.__dict__[name] for name in self._checked_fields() if name in self.__dict__}
        nested = self.__dict__.get("_checks_deferred", False)
        object.__setattr__(self, "_checks_deferred", True)
        try:
            yield
            if not nested:
                object.__setattr__(self, "_checks_deferred", False)
                self._check()
        except BaseException:
            self.__dict__.update(before)
            raise
        finally:
            if not nested:
                self.__dict__.pop("_checks_deferred", None)

    def update(self, config_dict):
        with self._undone_on_error():
            super().update(config_dict)

    def update_from_string(self, update_str: str):
        with self._undone_on_error():
            super().update_from_string(update_str)

    def validate(self):
        """transformers' validation (run by `save_pretrained`) and this configuration's own checks."""
        super().validate()
        self._check()

    @classmethod
    def from_dict(cls, config_dict, **kwargs):
        # Overrides of fields (from `from_pretrained(..., dropout=0.1)`) are checked with the rest in the constructor
        # rather than set afterwards, as transformers does, where they would skip every check.
        fields = cls._checked_fields()
        overrides = {key: kwargs.pop(key) for key in list(kwargs) if key in fields}
        return super().from_dict({**config_dict, **overrides}, **kwargs)


def check_number(name: str, value) -> None:
    """`ValueError` naming the field unless `value` is a finite real number (not a bool, not a string)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        hint = " (written in quotes in config.json? a number has none)" if isinstance(value, str) else ""
        raise ValueError(f"`{name}` must be a number, got {value!r} of type {type(value).__name__}{hint}.")
    if not math.isfinite(value):
        raise ValueError(f"`{name}` must be a finite number, got {value!r}.")


def check_special_token_ids(config) -> None:
    for name in ("pad_token_id", "unk_token_id", "bos_token_id", "eos_token_id"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < config.vocab_size:
            raise ValueError(f"`{name}` must be a token id in [0, vocab_size={config.vocab_size}), got {value!r}.")
    if len({config.pad_token_id, config.unk_token_id, config.bos_token_id, config.eos_token_id}) != 4:
        raise ValueError(
            "`pad_token_id`, `unk_token_id`, `bos_token_id` and `eos_token_id` must all differ, got "
            f"{config.pad_token_id}, {config.unk_token_id}, {config.bos_token_id} and {config.eos_token_id}."
        )
    if not isinstance(config.tie_word_embeddings, bool) or config.tie_word_embeddings:
        raise ValueError(
            f"`tie_word_embeddings` must be False (the decoder's output layer is its own), got "
            f"{config.tie_word_embeddings!r}."
        )


def check_refinable(config) -> None:
    """`ValueError` unless the SA-VAE refinement fits the model: it refines the decoded latent's posterior with its
    ELBO, whose KL is the regulariser only when both are the last timestep's."""
    if config.kl_regularizer != "last" or config.latent_mode != "last":
        raise ValueError(
            "The SA-VAE refinement (`svi_steps`, `refine_steps`) refines the decoded latent's posterior on its ELBO, "
            "so it needs `kl_regularizer='last'` and `latent_mode='last'` (the `sa-vae` and `vae-lstm` models), got "
            f"kl_regularizer={config.kl_regularizer!r} and latent_mode={config.latent_mode!r}."
        )


class TWRVAEConfig(CheckedConfigMixin, PretrainedConfig):
    r"""
    Configuration of a [`TWRVAEModel`]: an RNN encoder with a Gaussian posterior at every timestep, and an RNN
    language-model decoder conditioned on one latent vector. The defaults are the TWR-VAE paper's language-modelling
    settings (Li et al., COLING 2020); [`TWRVAEConfig.from_preset`] gives the papers' other models.

    Args:
        vocab_size (`int`, *optional*, defaults to 10000):
            Number of tokens in the vocabulary (the tokenizer's `len()`).
        embedding_size (`int`, *optional*, defaults to 512):
            Size of the word embeddings of the encoder and of the decoder.
        hidden_size (`int`, *optional*, defaults to 256):
            Size of the hidden state of every encoder and decoder RNN layer.
        latent_size (`int`, *optional*, defaults to 32):
            Size of the latent vector z (and of every timestep latent z_t).
        num_layers (`int`, *optional*, defaults to 1):
            Number of stacked RNN layers in the encoder and in the decoder (1 in TWR-VAE, 2 in HR-VAE).
        rnn_type (`str`, *optional*, defaults to `"lstm"`):
            The recurrent cell: `"lstm"`, `"gru"` or `"rnn"` (tanh Elman RNN).
        dropout (`float`, *optional*, defaults to 0.5):
            Dropout on the encoder's and the decoder's input embeddings and between stacked RNN layers, as in the
            papers' code.
        decoder_output_dropout (`float`, *optional*, defaults to 0.0):
            Dropout on the decoder's RNN output before the output layer. The papers' code has none (0.0 in every
            preset).
        posterior_input (`str`, *optional*, defaults to `"h"`):
            What the posterior layers read at timestep t: `"h"`, the top layer's hidden state h_t (TWR-VAE); or
            `"hc"`, the concatenation [h_t; c_t] of every layer (HR-VAE, LSTM only).
        latent_mode (`str`, *optional*, defaults to `"last"`):
            The latent fed to the decoder: `"last"`, z_T of the last real token (TWR-VAE); `"mean"`, the mean of
            z_1..z_T (TWR-VAE-mean); `"sum"`, their sum (TWR-VAE-sum). Each z_t is sampled independently.
        kl_regularizer (`str`, *optional*, defaults to `"timestep_wise"`):
            `"timestep_wise"` averages KL(q(z_t|x_1..t) || N(0, I)) over timesteps (TWR-VAE Eq. 3, HR-VAE Eq. 3);
            `"last"` regularises only the last timestep, which is the vanilla VAE-RNN of Bowman et al. (2016).
        kl_timestep_fraction (`float`, *optional*, defaults to 1.0):
            With `kl_regularizer="timestep_wise"`, the fraction of each sentence's last timesteps that are
            regularised: the last `round(fraction * T)` timesteps (Python's `round`, half to even, as the papers'
            code; at least one), ending at T (TWR-VAE Table 3 uses 0.25, 0.5, 0.75 and 1.0). Must be in (0, 1].
            The papers' code takes T as the padded length of the batch; here it is each sentence's own length.
        decoder_input (`str`, *optional*, defaults to `"standard"`):
            `"standard"`: the decoder reads [embedding of the previous gold word; z] at each step. `"inputless"`:
            it reads `<bos>` at the first step and `<unk>` at every later one, so only z carries the sentence
            (HR-VAE Table 2 and its code).
        decoder_init (`str`, *optional*, defaults to `"linear"`):
            How z starts the decoder. `"linear"`: h_0 = c_0 = W z with one bias-free linear layer (TWR-VAE code),
            giving every layer its own state. `"split"`: z is cut into h_0 and c_0 directly (HR-VAE code); this
            needs `latent_size` equal to the size of one layer's state (2 * hidden_size for an LSTM, hidden_size
            otherwise), which then starts every layer, or to `num_layers` times it, one slice per layer (HR-VAE
            code: [h_0; c_0] of layer 1, then of layer 2, ...).
        decoder_latent_input (`str`, *optional*, defaults to `"full"`):
            What part of z the decoder reads beside the word at every step. `"full"`: all of z (TWR-VAE code).
            `"last_layer"`: only the last layer's slice of z (HR-VAE code); needs `decoder_init="split"` with one
            slice per layer.
        word_dropout (`float`, *optional*, defaults to 0.0):
            During training, the probability of replacing each previous word read by the decoder with `<unk>`
            (Bowman et al., 2016). Must be in [0, 1].
        bow_loss_weight (`float`, *optional*, defaults to 0.0):
            Weight of a bag-of-words loss (Zhao et al., 2017, the CVAE's; this package's `twr-cvae` and `cvae` have
            it too): a small network predicts every word of the text from the decoded z alone, in any order, and
            -log of each word under its one softmax is added to the training loss. It makes z carry which words the
            text has (an E2E text's facts, say) instead of leaving them to the decoder's language model. 0 (the
            default, every paper preset) turns it off; it is not part of any bound, so the ELBO and IW-NLL that
            evaluation reports do not count it.
        bow_hidden_size (`int`, *optional*, defaults to 256):
            Size of the tanh layer of the bag-of-words network (used when `bow_loss_weight > 0`).
        initializer_range (`float`, *optional*, defaults to 0.1):
            Weights of embeddings, RNNs and linear layers are drawn from U(-initializer_range, initializer_range);
            biases start at 0. This differs from the papers' code, which keeps PyTorch's default initialisation.
        pad_token_id (`int`, *optional*, defaults to 0):
            Id of `<pad>`.
        unk_token_id (`int`, *optional*, defaults to 1):
            Id of `<unk>` (also the word that word dropout and the inputless decoder feed).
        bos_token_id (`int`, *optional*, defaults to 2):
            Id of `<bos>`, which starts every sentence and every generation.
        eos_token_id (`int`, *optional*, defaults to 3):
            Id of `<eos>`, which ends every sentence.
        tie_word_embeddings (`bool`, *optional*, defaults to `False`):
            Kept `False`: the decoder's output layer has weights of its own.
        posterior_mean_batch_norm_gamma (`float`, *optional*):
            BN-VAE (Zhu et al., 2020): batch-normalise the posterior mean with this fixed scale gamma and a learnable
            shift beta, so that the batch mean of the decoded latent's KL is at least
            0.5 * sum_j (beta_j**2 + gamma**2 * v_j / (v_j + eps)) nats in training, v_j the batch variance of the
            raw mean: `latent_size * gamma**2 / 2` while every v_j is far above eps (1e-5), but an encoder whose raw
            means vary less than eps over the batch escapes it, in the authors' code as here. `None` (the default) turns it off; the `bn-vae` preset uses 0.7, TWR-VAE Table 2's
            "BN-VAE (0.7)". The rules of the authors' code: one BatchNorm1d over the latent dimensions with PyTorch's
            eps 1e-5 and momentum 0.1 (BN:modules/encoders/enc_lstm.py:164); the scale is fixed at gamma and never
            trained (BN:modules/encoders/enc_lstm.py:165,185), the shift is learned from 0 (PyTorch's default,
            BN:modules/encoders/enc_lstm.py:164,189); only the mean is normalised, the log-variance is untouched, and
            the normalised mean is the posterior's mean everywhere after (KL, sampling, evaluation)
            (BN:modules/encoders/enc_lstm.py:206-215, BN:modules/encoders/gaussian_encoder.py:57-62); training mode
            normalises with the batch's mean and biased variance and updates running estimates (unbiased variance),
            evaluation mode uses the running estimates (PyTorch's BatchNorm1d, run in eval mode before every
            evaluation: BN:text_anneal_fb.py:418,472), so an evaluated sentence's posterior does not depend on its
            batch. Here the scale is read from this field at every call (it is no weight: no initialisation,
            optimiser or checkpoint can change it); the shift is the parameter `encoder.mean_batch_norm.bias` and
            the running estimates are buffers saved with the weights. The posterior exists at every timestep here,
            so the batch statistics are those of the decoded latent's posterior mean (the last real timestep's, or
            the mean over the real timesteps with `latent_mode="mean"`), one row per sentence, which is what the
            authors' encoder normalises and what keeps the bound on the decoded latent; padding never enters them.
            The same affine map then normalises every timestep's mean, so the decoded posterior stays the one
            `latent_mode` derives from the timesteps. Needs `latent_mode` "last" or "mean" (a sum's mean would not
            be normalised by one map of the timesteps) and, in training, batches of at least 2 sentences (the
            authors' training loop skips smaller ones: BN:text_anneal_fb.py:354-355).
        svi_steps (`int`, *optional*, defaults to 0):
            SA-VAE (Kim et al., 2018): refine the encoder's (mean, log-variance) of the decoded latent by this many
            steps of gradient descent on each sentence's negative ELBO, rec + kl_weight * KL, before decoding. 0 (the
            default) turns it off; the authors' and the `sa-vae` preset's is 20 (SA:train_text.py:55). In training the
            loss's reconstruction and KL are those of the refined posterior, and the gradient flows through the
            refinement back into the encoder and into the decoder (the authors' SA-VAE, `--model savae --train_n2n 1`,
            SA:train_text.py:193-224). The authors' evaluation refines too (SA:train_text.py:310-321); here, to keep
            evaluation deterministic, the forward pass in evaluation mode refines only when given `refine_steps`
            (`encode` likewise). The rules of the authors' code (SA:optim_n2n.py:72-115): the steps start from the
            encoder's output; each draws one reparameterisation noise (and, in training, one set of dropout masks)
            for its loss, takes the gradient with respect to the mean and the log-variance, clips each of the two
            (see `svi_max_grad_norm`), and moves both along a momentum buffer, m = momentum * m - grad (m = -grad at
            the first step), by `svi_learning_rate` * m; kl_weight is the training step's, inside the steps too
            (SA:train_text.py:114-120). Needs `kl_regularizer="last"` and `latent_mode="last"`, where the
            regulariser is the decoded latent's KL that the ELBO refines. Where this deliberately differs from the
            authors' code: they back-propagate through the steps by finite differences (Hessian-vector products with
            r = 1e-5, each clipped, SA:optim_n2n.py:117-169); here autograd differentiates the steps exactly
            (`create_graph=True`), which is the same derivative without the finite-difference error or those clips,
            and through a step's gradient clip where it binds (their backward differentiates the unclipped gradient
            there). Their step loss is the batch mean, so a sentence's step is 1/B of its own gradient and the clip
            is joint over the batch (SA:optim_n2n.py:94-96): both depend on the batch; here every sentence is
            refined alone (see `svi_batch_size`).
        svi_learning_rate (`float`, *optional*, defaults to 1.0):
            Step size of the refinement on the authors' batch-mean loss, for the mean and the log-variance alike
            (`--svi_lr1`, `--svi_lr2`, SA:train_text.py:56-57,124; SA:optim_n2n.py:110-112).
        svi_momentum (`float`, *optional*, defaults to 0.5):
            Momentum of the refinement (SA:train_text.py:60,125; SA:optim_n2n.py:105-109). In [0, 1).
        svi_max_grad_norm (`float`, *optional*, defaults to 5.0):
            Gradient clipping of the refinement (SA:train_text.py:63,127): the authors clip the gradient of the mean
            and that of the log-variance, each over the whole batch, to this norm (SA:optim_n2n.py:55-70,94-96); 0
            clips nothing, as in the authors' code. Here each sentence's two gradients are clipped alone, to its
            share of that norm, `svi_max_grad_norm / sqrt(svi_batch_size)` (see `svi_batch_size`).
        svi_batch_size (`int`, *optional*, defaults to 32):
            The batch size whose steps the per-sentence refinement reproduces: the authors' batches of 32 sentences
            (SA:preprocess_text.py:193). Each sentence's objective is its share of the authors' batch-mean loss,
            (rec + kl_weight * KL) / svi_batch_size, so its step is what the authors' code gives it in a full batch,
            and the clip, at `svi_max_grad_norm / sqrt(svi_batch_size)` per sentence, binds exactly where the
            authors' joint clip binds on a batch of that many sentences whose gradients have equal norms. A
            sentence's refined posterior then depends on it alone, not on the other sentences of its batch or on
            that batch's size (the authors' length buckets make many batches smaller than 32).
        aggregate_posterior (`dict`, *optional*, defaults to None):
            The settings of the model's aggregate-posterior sampler, or None when it has none: a Gaussian mixture
            fitted after training to the posterior means of the training texts (`model.fit_aggregate_posterior`,
            `training/train.py --aggregate_posterior_components K`), from which `model.sample(sampler="aggregate")`
            draws latents instead of the prior (ex-post density estimation, Ghosh et al., 2020). Its tensors are in
            the file `file` (`aggregate_posterior.safetensors`) beside the weights, whose metadata names the weights
            it was fitted to; the other keys record the fit (`num_components`, `covariance`, `init`, `seed`,
            `max_iterations`, `tolerance`, `variance_floor`, `num_points`, `iterations`, `converged`,
            `mean_log_likelihood`; see `aggregate_posterior.py`). Written by the model, not to be set by hand.

    Where this package deliberately differs from the papers' code: each sentence is handled at its own length T
    (the code reads its padding: z_T and the KL average come from the padded length, so a sentence's loss depends on
    its batch); training batches are grouped by length and shuffled (the code sorts by length and never shuffles);
    weights are initialised uniformly (see `initializer_range`). Everything else in the presets follows the code.
    The code also sums the loss over the batch; `training/train.py --loss_reduction sum` does the same.

    Citations `BN:path:line` are BN-VAE's code, valdersoul/bn-vae at commit b2481937; `SA:path:line` are SA-VAE's,
    harvardnlp/sa-vae at commit e5187a21. The baselines' presets keep their authors' rule and take the rest of the
    model from this package: `bn-vae` and `sa-vae` are the `vae-lstm` model (this package's LSTM VAE with the KL
    of the last timestep, its sizes, encoder and decoder input dropout, h_0 = c_0 = W z decoder start, output-layer
    bias and uniform initialisation) plus BN-VAE's normalised posterior mean (gamma 0.7) or SA-VAE's refinement
    (20 steps). The authors' own networks differ from it: BN-VAE's is He et al.'s LSTM VAE (no encoder dropout, a
    bias-free posterior layer, c_0 = W z with h_0 = tanh(c_0), decoder output dropout, no output bias:
    BN:modules/encoders/enc_lstm.py:155-163, BN:modules/decoders/dec_lstm.py:30-43,81), whose encoder keeps
    PyTorch's default initialisation (BN:modules/encoders/enc_lstm.py:169-185); SA-VAE's has no encoder dropout,
    h_0 = W z + b with c_0 = 0, decoder output dropout (SA:models_text.py:29-49,71-89) and every parameter, biases
    included, from U(-0.1, 0.1) (SA:train_text.py:92-93). Their optimisers, schedules and batching by length are
    training options.

    Example:

    ```python
    >>> from modeling_twrvae import TWRVAEConfig, TWRVAEModel

    >>> config = TWRVAEConfig.from_preset("hr-vae", vocab_size=10000)
    >>> model = TWRVAEModel(config)
    ```
    """

    model_type = "twrvae"

    vocab_size: int = 10000
    embedding_size: int = 512
    hidden_size: int = 256
    latent_size: int = 32
    num_layers: int = 1
    rnn_type: str = "lstm"
    dropout: float = 0.5
    decoder_output_dropout: float = 0.0
    posterior_input: str = "h"
    latent_mode: str = "last"
    kl_regularizer: str = "timestep_wise"
    kl_timestep_fraction: float = 1.0
    decoder_input: str = "standard"
    decoder_init: str = "linear"
    decoder_latent_input: str = "full"
    word_dropout: float = 0.0
    bow_loss_weight: float = 0.0
    bow_hidden_size: int = 256
    initializer_range: float = 0.1
    pad_token_id: int | None = 0
    unk_token_id: int | None = 1
    bos_token_id: int | None = 2
    eos_token_id: int | None = 3
    tie_word_embeddings: bool = False
    posterior_mean_batch_norm_gamma: float | None = None
    svi_steps: int = 0
    svi_learning_rate: float = 1.0
    svi_momentum: float = 0.5
    svi_max_grad_norm: float = 5.0
    svi_batch_size: int = 32
    aggregate_posterior: dict | None = None

    def __post_init__(self, **kwargs):
        if __name__ == "modeling_twrvae.configuration_twrvae" and "text-vae" in (kwargs.get("custom_pipelines") or {}):
            # The installed package serves "text-vae" from transformers' registry; the saved entry is for the
            # remote-code copy of this file and would send pipeline() down the remote-code path.
            kwargs["custom_pipelines"] = {k: v for k, v in kwargs["custom_pipelines"].items() if k != "text-vae"}
        self._check()
        super().__post_init__(**kwargs)

    @property
    def state_size(self) -> int:
        """Size of one RNN layer's recurrent state: [h; c] for an LSTM, h otherwise."""
        return 2 * self.hidden_size if self.rnn_type == "lstm" else self.hidden_size

    @property
    def decoder_step_latent_size(self) -> int:
        """Size of the part of z that the decoder reads beside the word at every step."""
        return self.state_size if self.decoder_latent_input == "last_layer" else self.latent_size

    @property
    def posterior_input_size(self) -> int:
        if self.posterior_input == "hc":
            return self.num_layers * 2 * self.hidden_size
        return self.hidden_size

    def _check(self) -> None:
        def one_of(name, allowed):
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"`{name}` must be one of {list(allowed)}, got {value!r}.")

        def positive(name):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")

        for name in ("vocab_size", "embedding_size", "hidden_size", "latent_size", "num_layers"):
            positive(name)
        one_of("rnn_type", _RNN_TYPES)
        one_of("posterior_input", _POSTERIOR_INPUTS)
        one_of("latent_mode", _LATENT_MODES)
        one_of("kl_regularizer", _KL_REGULARIZERS)
        one_of("decoder_input", _DECODER_INPUTS)
        one_of("decoder_init", _DECODER_INITS)
        one_of("decoder_latent_input", _DECODER_LATENT_INPUTS)
        for name in ("dropout", "decoder_output_dropout", "word_dropout", "kl_timestep_fraction", "initializer_range"):
            check_number(name, getattr(self, name))
        for name in ("dropout", "decoder_output_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"`{name}` must be in [0, 1), got {getattr(self, name)!r}.")
        if not 0.0 <= self.word_dropout <= 1.0:
            raise ValueError(f"`word_dropout` must be in [0, 1], got {self.word_dropout!r}.")
        if not 0.0 < self.kl_timestep_fraction <= 1.0:
            raise ValueError(
                f"`kl_timestep_fraction` must be in (0, 1] (1.0 regularises every timestep), "
                f"got {self.kl_timestep_fraction!r}."
            )
        check_number("bow_loss_weight", self.bow_loss_weight)
        if not self.bow_loss_weight >= 0:
            raise ValueError(f"`bow_loss_weight` must be >= 0 (0 turns the loss off), got {self.bow_loss_weight!r}.")
        if (
            isinstance(self.bow_hidden_size, bool)
            or not isinstance(self.bow_hidden_size, int)
            or self.bow_hidden_size < 1
        ):
            raise ValueError(f"`bow_hidden_size` must be an integer >= 1, got {self.bow_hidden_size!r}.")
        if not self.initializer_range > 0:
            raise ValueError(f"`initializer_range` must be > 0, got {self.initializer_range!r}.")
        if self.posterior_input == "hc" and self.rnn_type != "lstm":
            raise ValueError(
                f"`posterior_input='hc'` reads the LSTM cell state, but `rnn_type={self.rnn_type!r}` has none; "
                "use `posterior_input='h'` or `rnn_type='lstm'`."
            )
        if self.decoder_init == "split" and self.latent_size not in (
            self.state_size,
            self.num_layers * self.state_size,
        ):
            raise ValueError(
                f"`decoder_init='split'` cuts z into the decoder's initial state, so `latent_size` must be "
                f"{self.state_size} (one layer's state, shared by all layers) or {self.num_layers * self.state_size} "
                f"(one slice per layer), got {self.latent_size}."
            )
        if self.decoder_latent_input == "last_layer" and (
            self.decoder_init != "split" or self.latent_size != self.num_layers * self.state_size
        ):
            raise ValueError(
                "`decoder_latent_input='last_layer'` reads the last layer's slice of z, so it needs "
                f"`decoder_init='split'` and `latent_size={self.num_layers * self.state_size}` (one slice per layer), "
                f"got decoder_init={self.decoder_init!r} and latent_size={self.latent_size}."
            )
        check_special_token_ids(self)
        self._check_baselines()
        if self.aggregate_posterior is not None and not isinstance(self.aggregate_posterior, dict):
            raise ValueError(
                "`aggregate_posterior` holds the settings of a fitted mixture (a dict) or None, got "
                f"{self.aggregate_posterior!r}: fit one with `model.fit_aggregate_posterior(texts, tokenizer)`."
            )

    def _check_baselines(self) -> None:
        gamma = self.posterior_mean_batch_norm_gamma
        if gamma is not None:
            check_number("posterior_mean_batch_norm_gamma", gamma)
            if not gamma > 0:
                raise ValueError(
                    f"`posterior_mean_batch_norm_gamma` must be > 0 (BN-VAE's scale; None turns it off), got {gamma!r}."
                )
            if self.latent_mode not in ("last", "mean"):
                raise ValueError(
                    "`posterior_mean_batch_norm_gamma` normalises the decoded latent's posterior mean with one map of "
                    f"every timestep's mean, which `latent_mode='sum'` would not keep normalised; got latent_mode="
                    f"{self.latent_mode!r}: use 'last' or 'mean'."
                )
        for name in ("svi_steps", "svi_batch_size"):
            value = getattr(self, name)
            least = 0 if name == "svi_steps" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"`{name}` must be an integer >= {least}, got {value!r}.")
        for name in ("svi_learning_rate", "svi_momentum", "svi_max_grad_norm"):
            check_number(name, getattr(self, name))
        if not self.svi_learning_rate > 0:
            raise ValueError(f"`svi_learning_rate` must be > 0, got {self.svi_learning_rate!r}.")
        if not 0.0 <= self.svi_momentum < 1.0:
            raise ValueError(f"`svi_momentum` must be in [0, 1), got {self.svi_momentum!r}.")
        if self.svi_max_grad_norm < 0:
            raise ValueError(f"`svi_max_grad_norm` must be >= 0 (0 clips nothing), got {self.svi_max_grad_norm!r}.")
        if self.svi_steps > 0:
            check_refinable(self)

    @classmethod
    def presets(cls) -> list[str]:
        """Names accepted by [`TWRVAEConfig.from_preset`]."""
        return sorted(PRESETS)

    @classmethod
    def from_preset(cls, name: str, **overrides) -> TWRVAEConfig:
        """Build the configuration of a named model of the papers, e.g. `"twr-vae"`, `"hr-vae"` or `"vae-lstm"`.

        Keyword arguments override the preset's values (`vocab_size` at least, to match your tokenizer). A preset
        that splits z into the decoder's state (HR-VAE) derives `latent_size` from the sizes unless it is given.
        """
        if name not in PRESETS:
            raise ValueError(f"Unknown preset {name!r}; choose one of {cls.presets()}.")
        values = {**copy.deepcopy(PRESETS[name]), **overrides}
        if values.get("decoder_init") == "split" and "latent_size" not in values:
            hidden = values.get("hidden_size", cls.hidden_size)
            state = (2 if values.get("rnn_type", cls.rnn_type) == "lstm" else 1) * hidden
            slices = (
                values.get("num_layers", cls.num_layers) if values.get("decoder_latent_input") == "last_layer" else 1
            )
            values["latent_size"] = slices * state
        return cls(**values)


__all__ = ["CheckedConfigMixin", "TWRVAEConfig", "PRESETS", "check_refinable"]
