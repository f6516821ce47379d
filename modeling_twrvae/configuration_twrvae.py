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
    """Checks a configuration however it is built or changed, with transformers' convention for the rules: each is a
    `validate_*` method, and `validate()` runs transformers' own and then these.

    transformers runs its class validators in `__init__` and `validate()` only: a loaded configuration's overrides
    (`from_pretrained(..., dropout=0.1)`), `update`, `update_from_string` and a plain assignment would skip them, and
    a failure would come as a multi-line `StrictDataclassClassValidationError`. Here the overrides of `from_dict` go
    into the constructor (checked together), `update` and `update_from_string` check once after all their changes
    (and undo them on an error), any other assignment to a field is checked at once (and undone), and a failure is
    the rule's own one-line `ValueError`.
    """

    def _check(self) -> None:
        for validator in self._own_validators():
            validator(self)

    @classmethod
    def _own_validators(cls) -> list:
        """The `validate_*` methods of this configuration's classes (not transformers' own), in definition order."""
        validators = {}
        for klass in reversed(cls.__mro__):
            if klass.__module__.startswith(("transformers.", "huggingface_hub.")) or klass is object:
                continue
            for name, value in vars(klass).items():
                if name.startswith("validate_") and callable(value):
                    validators[name] = value
        return list(validators.values())

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


def check_positive_int(name: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")


def check_one_of(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"`{name}` must be one of {list(allowed)}, got {value!r}.")


def check_in_range(name: str, value, allowed: str, inside) -> None:
    """`ValueError` naming the field unless `value` is a finite number for which `inside(value)` holds; `allowed`
    says which numbers those are ("in [0, 1)", "> 0 (0 turns it off)")."""
    check_number(name, value)
    if not inside(value):
        raise ValueError(f"`{name}` must be {allowed}, got {value!r}.")


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
            regularised: the last `round(fraction * T)` (at least one), as the papers' code rounds (TWR-VAE Table 3
            uses 0.25, 0.5, 0.75 and 1.0). In (0, 1].
        decoder_input (`str`, *optional*, defaults to `"standard"`):
            `"standard"`: the decoder reads [embedding of the previous gold word; z] at each step. `"inputless"`:
            it reads `<bos>` at the first step and `<unk>` at every later one, so only z carries the sentence
            (HR-VAE Table 2 and its code).
        decoder_init (`str`, *optional*, defaults to `"linear"`):
            How z starts the decoder: `"linear"`, h_0 = c_0 = W z for every layer (TWR-VAE code); `"split"`, z cut
            into h_0 and c_0 (HR-VAE code), so `latent_size` must be one layer's state size (shared by all layers)
            or `num_layers` times it (one slice per layer).
        decoder_latent_input (`str`, *optional*, defaults to `"full"`):
            What part of z the decoder reads beside the word at every step. `"full"`: all of z (TWR-VAE code).
            `"last_layer"`: only the last layer's slice of z (HR-VAE code); needs `decoder_init="split"` with one
            slice per layer.
        word_dropout (`float`, *optional*, defaults to 0.0):
            During training, the probability of replacing each previous word read by the decoder with `<unk>`
            (Bowman et al., 2016). Must be in [0, 1].
        bow_loss_weight (`float`, *optional*, defaults to 0.0):
            Weight of the bag-of-words loss (Zhao et al., 2017): a small network predicts the text's words from z
            alone, which makes z carry them. 0 (every paper preset) turns it off; it is not part of any bound, so
            evaluation's ELBO and IW-NLL leave it out.
        bow_hidden_size (`int`, *optional*, defaults to 256):
            Size of the tanh layer of the bag-of-words network (used when `bow_loss_weight > 0`).
        initializer_range (`float`, *optional*, defaults to 0.1):
            Weights are drawn from U(-initializer_range, initializer_range), biases start at 0 (the papers' code keeps
            PyTorch's default initialisation).
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
            BN-VAE (Zhu et al., 2020): batch-normalise the decoded latent's posterior mean with this fixed scale and a
            learned shift, which holds the KL at `latent_size * gamma**2 / 2` or more on average. `None` turns it off;
            the `bn-vae` preset uses 0.7. Needs `latent_mode` "last" or "mean" and training batches of 2 or more.
            The authors' rules, file by line, are in the documentation's models page.
        svi_steps (`int`, *optional*, defaults to 0):
            SA-VAE (Kim et al., 2018): refine the decoded latent's (mean, log-variance) by this many gradient steps on
            each sentence's negative ELBO before decoding, with gradients through the steps in training. 0 turns it
            off; the `sa-vae` preset uses 20. In evaluation mode the forward pass refines only when given
            `refine_steps`. Needs `kl_regularizer="last"` and `latent_mode="last"`.
        svi_learning_rate (`float`, *optional*, defaults to 1.0):
            Step size of the refinement, for the mean and the log-variance alike.
        svi_momentum (`float`, *optional*, defaults to 0.5):
            Momentum of the refinement, in [0, 1).
        svi_max_grad_norm (`float`, *optional*, defaults to 5.0):
            The authors' clip of a batch's refinement gradients; each sentence's are clipped at
            `svi_max_grad_norm / sqrt(svi_batch_size)`. 0 clips nothing.
        svi_batch_size (`int`, *optional*, defaults to 32):
            The authors' batch size: each sentence is refined on its share of that batch's mean loss, so its refined
            posterior never depends on the batch it is in.
        aggregate_posterior (`dict`, *optional*, defaults to None):
            The settings of the aggregate-posterior sampler that `model.fit_aggregate_posterior` fits after training
            (its tensors are in `aggregate_posterior.safetensors`), or None. Written by the model, not by hand.

    What the presets take from the papers' and the baselines' code, with file and line, and where this package
    deliberately differs (each sentence at its own length, shuffled length-grouped batches, uniform initialisation)
    is in the documentation's models page.

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

    def validate_sizes(self) -> None:
        for name in ("vocab_size", "embedding_size", "hidden_size", "latent_size", "num_layers", "bow_hidden_size"):
            check_positive_int(name, getattr(self, name))

    def validate_choices(self) -> None:
        check_one_of("rnn_type", self.rnn_type, _RNN_TYPES)
        check_one_of("posterior_input", self.posterior_input, _POSTERIOR_INPUTS)
        check_one_of("latent_mode", self.latent_mode, _LATENT_MODES)
        check_one_of("kl_regularizer", self.kl_regularizer, _KL_REGULARIZERS)
        check_one_of("decoder_input", self.decoder_input, _DECODER_INPUTS)
        check_one_of("decoder_init", self.decoder_init, _DECODER_INITS)
        check_one_of("decoder_latent_input", self.decoder_latent_input, _DECODER_LATENT_INPUTS)

    def validate_rates(self) -> None:
        for name in ("dropout", "decoder_output_dropout"):
            check_in_range(name, getattr(self, name), "in [0, 1)", lambda x: 0 <= x < 1)
        check_in_range("word_dropout", self.word_dropout, "in [0, 1]", lambda x: 0 <= x <= 1)
        check_in_range(
            "kl_timestep_fraction", self.kl_timestep_fraction, "in (0, 1] (1.0 regularises every timestep)",
            lambda x: 0 < x <= 1,
        )  # fmt: skip
        check_in_range("bow_loss_weight", self.bow_loss_weight, ">= 0 (0 turns the loss off)", lambda x: x >= 0)
        check_in_range("initializer_range", self.initializer_range, "> 0", lambda x: x > 0)

    def validate_layout(self) -> None:
        """The options that depend on each other: the cell, how z starts the decoder, what it reads at each step."""
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

    def validate_special_token_ids(self) -> None:
        check_special_token_ids(self)

    def validate_bn_vae(self) -> None:
        gamma = self.posterior_mean_batch_norm_gamma
        if gamma is None:
            return
        check_in_range(
            "posterior_mean_batch_norm_gamma", gamma, "> 0 (BN-VAE's scale; None turns it off)", lambda x: x > 0
        )
        if self.latent_mode not in ("last", "mean"):
            raise ValueError(
                "`posterior_mean_batch_norm_gamma` normalises the decoded latent's posterior mean with one map of "
                f"every timestep's mean, which `latent_mode='sum'` would not keep normalised; got latent_mode="
                f"{self.latent_mode!r}: use 'last' or 'mean'."
            )

    def validate_sa_vae(self) -> None:
        for name, least in (("svi_steps", 0), ("svi_batch_size", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"`{name}` must be an integer >= {least}, got {value!r}.")
        check_in_range("svi_learning_rate", self.svi_learning_rate, "> 0", lambda x: x > 0)
        check_in_range("svi_momentum", self.svi_momentum, "in [0, 1)", lambda x: 0 <= x < 1)
        check_in_range("svi_max_grad_norm", self.svi_max_grad_norm, ">= 0 (0 clips nothing)", lambda x: x >= 0)
        if self.svi_steps > 0:
            check_refinable(self)

    def validate_aggregate_posterior(self) -> None:
        if self.aggregate_posterior is not None and not isinstance(self.aggregate_posterior, dict):
            raise ValueError(
                "`aggregate_posterior` holds the settings of a fitted mixture (a dict) or None, got "
                f"{self.aggregate_posterior!r}: fit one with `model.fit_aggregate_posterior(texts, tokenizer)`."
            )

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
