"""Configuration of the conditional TWR-VAE for dialogue response generation (TWR-VAE paper, section 4.2)."""

from __future__ import annotations

import copy

from transformers import PretrainedConfig

from .configuration_twrvae import (
    CheckedConfigMixin,
    check_in_range,
    check_one_of,
    check_positive_int,
    check_special_token_ids,
)

_KL_REGULARIZERS = ("timestep_wise", "last")

# Named settings. Every preset starts from the class defaults (the TWR-VAE paper's dialogue model) and overrides
# only what differs.
CVAE_PRESETS: dict[str, dict] = {
    # The TWR-VAE authors' dialogue code (dialogue_dd/, dialogue_switchboard/): dropout 0.5 on the word embeddings
    # of the utterance encoder and of the decoder, 0.25 on the context encoder's inputs, and a prior network whose
    # tanh layer has the latent's size (derived from `latent_size` by `from_preset`). Their KL annealing (0.1 to 1
    # over 10 epochs) is a training option, see modeling_twrvae/trainer/configs/dialogue/.
    "twr-cvae": {"dropout": 0.5, "context_dropout": 0.25},
    # Zhao et al. (2017): KL of the last context step only, with the bag-of-words loss. Their KL annealing is a
    # training option (`--kl_schedule linear --kl_anneal_steps 10000`), see modeling_twrvae/trainer/configs/dialogue/.
    "cvae": {"kl_regularizer": "last", "bow_loss_weight": 1.0},
}


class TWRCVAEConfig(CheckedConfigMixin, PretrainedConfig):
    r"""
    Configuration of a [`TWRCVAEModel`], the conditional TWR-VAE for dialogue response generation (Li et al., COLING
    2020, section 4.2, after the CVAE of Zhao et al., 2017). A bidirectional GRU encodes every utterance; a GRU reads
    the last `context_window` utterances of the context, each with a one-hot of who speaks; at every context step j
    a recognition network gives q(z_j | x, c_j) and a prior network p(z_j | c_j); a GRU decoder started from
    [z; c] writes the response. The defaults are the paper's sizes; [`TWRCVAEConfig.from_preset`] gives `twr-cvae`
    and the `cvae` baseline.

    Args:
        vocab_size (`int`, *optional*, defaults to 10000):
            Number of tokens in the vocabulary (the tokenizer's `len()`).
        embedding_size (`int`, *optional*, defaults to 200):
            Size of the word embeddings, shared by the utterance encoder and the decoder.
        utterance_hidden_size (`int`, *optional*, defaults to 300):
            Hidden size of each direction of the bidirectional GRU utterance encoder; an utterance's encoding is
            the concatenation of both directions' last states (2 * utterance_hidden_size).
        context_hidden_size (`int`, *optional*, defaults to 300):
            Hidden size of the GRU context encoder (the paper: "both the context encoder and the decoder use a
            one-layer GRU with 300 hidden size").
        decoder_hidden_size (`int`, *optional*, defaults to 300):
            Hidden size of the GRU decoder.
        latent_size (`int`, *optional*, defaults to 200):
            Size of the latent z (and of every context step's z_j).
        prior_hidden_size (`int`, *optional*, defaults to 400):
            Size of the tanh layer of the prior network p(z | c) (Zhao et al.: max(2 * latent_size, 100); the
            `twr-cvae` preset: `latent_size`, as the TWR-VAE authors' code).
        context_window (`int`, *optional*, defaults to 10):
            J, the most context utterances the model reads (the last J before the response).
        num_floors (`int`, *optional*, defaults to 2):
            Number of speaker values in the one-hot floor feature. With 2 (Zhao et al.), floor 1 marks an utterance
            of the speaker who gives the response and 0 one of the other speaker.
        kl_regularizer (`str`, *optional*, defaults to `"timestep_wise"`):
            `"timestep_wise"`: (1/J) sum_j KL(q(z_j | x, c_j) || p(z_j | c_j)) over each dialogue's own J context
            steps (TWR-VAE Eq. 7). `"last"`: only the last step's KL, the CVAE of Zhao et al.
        bow_loss_weight (`float`, *optional*, defaults to 0.0):
            Weight of the bag-of-words loss of Zhao et al. (an MLP predicts every response word from [z; c]); 0 turns
            it off. Must be >= 0.
        bow_hidden_size (`int`, *optional*, defaults to 400):
            Size of the tanh layer of the bag-of-words network (used when `bow_loss_weight > 0`).
        dropout (`float`, *optional*, defaults to 0.0):
            Dropout on the word embeddings that the utterance encoder and the decoder read (Zhao et al.: none; the
            TWR-VAE authors' code and the `twr-cvae` preset: 0.5). In [0, 1).
        context_dropout (`float`, *optional*, defaults to 0.0):
            Dropout on the context encoder's inputs, each utterance's encoding with its floor (the TWR-VAE authors'
            code and the `twr-cvae` preset: 0.25). In [0, 1).
        word_dropout (`float`, *optional*, defaults to 0.0):
            During training, the probability of replacing each word the decoder reads with `<unk>`. In [0, 1].
        initializer_range (`float`, *optional*, defaults to 0.08):
            Embeddings, GRUs and the decoder's layers start from U(-initializer_range, initializer_range) (Zhao et
            al.'s `init_w`); biases start at 0.
        latent_initializer_range (`float`, *optional*, defaults to 0.02):
            The recognition and prior networks start from U(-latent_initializer_range, latent_initializer_range)
            (TWR-VAE paper, appendix F).
        pad_token_id, unk_token_id, bos_token_id, eos_token_id (`int`, *optional*, defaults to 0, 1, 2, 3):
            Ids of `<pad>`, `<unk>`, `<bos>` and `<eos>`, as the package's tokenizers make them.
        tie_word_embeddings (`bool`, *optional*, defaults to `False`):
            Kept `False`: the decoder's output layer has weights of its own.

    Example:

    ```python
    >>> from modeling_twrvae import TWRCVAEConfig, TWRCVAEModel

    >>> model = TWRCVAEModel(TWRCVAEConfig.from_preset("twr-cvae", vocab_size=10000))
    ```
    """

    model_type = "twrcvae"

    vocab_size: int = 10000
    embedding_size: int = 200
    utterance_hidden_size: int = 300
    context_hidden_size: int = 300
    decoder_hidden_size: int = 300
    latent_size: int = 200
    prior_hidden_size: int = 400
    context_window: int = 10
    num_floors: int = 2
    kl_regularizer: str = "timestep_wise"
    bow_loss_weight: float = 0.0
    bow_hidden_size: int = 400
    dropout: float = 0.0
    context_dropout: float = 0.0
    word_dropout: float = 0.0
    initializer_range: float = 0.08
    latent_initializer_range: float = 0.02
    pad_token_id: int | None = 0
    unk_token_id: int | None = 1
    bos_token_id: int | None = 2
    eos_token_id: int | None = 3
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        self._check()
        super().__post_init__(**kwargs)

    @property
    def utterance_encoding_size(self) -> int:
        return 2 * self.utterance_hidden_size

    @property
    def condition_size(self) -> int:
        """Size of [z; c], what starts the decoder."""
        return self.latent_size + self.context_hidden_size

    def validate_sizes(self) -> None:
        for name in (
            "vocab_size",
            "embedding_size",
            "utterance_hidden_size",
            "context_hidden_size",
            "decoder_hidden_size",
            "latent_size",
            "prior_hidden_size",
            "context_window",
            "bow_hidden_size",
        ):
            check_positive_int(name, getattr(self, name))
        if isinstance(self.num_floors, bool) or not isinstance(self.num_floors, int) or self.num_floors < 1:
            raise ValueError(f"`num_floors` must be a positive integer (2: responder or not), got {self.num_floors!r}.")

    def validate_choices(self) -> None:
        check_one_of("kl_regularizer", self.kl_regularizer, _KL_REGULARIZERS)

    def validate_rates(self) -> None:
        check_in_range("bow_loss_weight", self.bow_loss_weight, ">= 0 (0 turns the loss off)", lambda x: x >= 0)
        for name in ("dropout", "context_dropout"):
            check_in_range(name, getattr(self, name), "in [0, 1)", lambda x: 0 <= x < 1)
        check_in_range("word_dropout", self.word_dropout, "in [0, 1]", lambda x: 0 <= x <= 1)
        for name in ("initializer_range", "latent_initializer_range"):
            check_in_range(name, getattr(self, name), "> 0", lambda x: x > 0)

    def validate_special_token_ids(self) -> None:
        check_special_token_ids(self)

    @classmethod
    def presets(cls) -> list[str]:
        """Names accepted by [`TWRCVAEConfig.from_preset`]."""
        return sorted(CVAE_PRESETS)

    @classmethod
    def from_preset(cls, name: str, **overrides) -> TWRCVAEConfig:
        """The configuration of `"twr-cvae"` (the paper's) or `"cvae"` (Zhao et al.); keywords override it. The
        `twr-cvae` prior network's tanh layer takes the latent's size unless `prior_hidden_size` is given."""
        if name not in CVAE_PRESETS:
            raise ValueError(f"Unknown preset {name!r}; choose one of {cls.presets()}.")
        values = {**copy.deepcopy(CVAE_PRESETS[name]), **overrides}
        if name == "twr-cvae" and "prior_hidden_size" not in values:
            values["prior_hidden_size"] = values.get("latent_size", cls.latent_size)
        return cls(**values)


__all__ = ["CVAE_PRESETS", "TWRCVAEConfig"]
