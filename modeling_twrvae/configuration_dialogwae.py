"""Configuration of DialogWAE (Gu et al., ICLR 2019), a baseline of TWR-VAE's Table 5."""

from __future__ import annotations

from transformers import PretrainedConfig

from .configuration_twrvae import CheckedConfigMixin, check_in_range, check_positive_int, check_special_token_ids

# Citations `WAE:path:line` are the DialogWAE authors' code, guxd/DialogWAE at commit 29f206a.
DIALOGWAE_PRESETS: dict[str, dict] = {
    # The Gaussian prior network (WAE:models/dialogwae.py:63).
    "dialogwae": {"num_prior_components": 1},
    # The Gaussian-mixture prior network, with the authors' 3 components for Switchboard (WAE:configs.py:37; they
    # use 5 on DailyDialog, the same line's comment).
    "dialogwae-gmp": {"num_prior_components": 3},
}


class DialogWAEConfig(CheckedConfigMixin, PretrainedConfig):
    r"""
    Configuration of a [`DialogWAEModel`]: the conditional Wasserstein autoencoder for dialogue of Gu et al. (ICLR
    2019). The context and the response are encoded as in the package's other dialogue models (a bidirectional GRU per
    utterance, a GRU over the context's utterances with who speaks); a posterior network and a prior network each draw
    a Gaussian noise and a generator turns it into z, and a critic on [z; c] tells the two apart. Defaults are the
    authors' (WAE:configs.py:3-28).

    Args:
        vocab_size (`int`, *optional*, defaults to 10000):
            Number of tokens in the vocabulary.
        embedding_size (`int`, *optional*, defaults to 200):
            Size of the word embeddings, shared by the encoders and the decoder.
        hidden_size (`int`, *optional*, defaults to 300):
            Hidden size of the utterance encoder (each direction) and of the context encoder.
        latent_size (`int`, *optional*, defaults to 200):
            Size of the noise and of z.
        context_window (`int`, *optional*, defaults to 10):
            How many utterances before a response make its context.
        num_floors (`int`, *optional*, defaults to 2):
            Size of the one-hot of who speaks beside each context utterance.
        num_prior_components (`int`, *optional*, defaults to 3):
            Components of the prior network's Gaussian mixture (DialogWAE-GMP); 1 is the Gaussian prior network.
        gumbel_temperature (`float`, *optional*, defaults to 0.1):
            Temperature of the hard Gumbel-softmax that picks a mixture component.
        gradient_penalty_weight (`float`, *optional*, defaults to 10.0):
            Weight of the critic's gradient penalty.
        dropout (`float`, *optional*, defaults to 0.5):
            Dropout on the word embeddings of the utterance encoder and of the decoder.
        context_dropout (`float`, *optional*, defaults to 0.25):
            Dropout on the context encoder's inputs.
        initializer_range (`float`, *optional*, defaults to 0.02):
            The linear layers of the posterior and prior networks, the generators and the critic start from
            U(-initializer_range, initializer_range), biases at 0.
        mixture_initializer_range (`float`, *optional*, defaults to 0.05):
            The same for the mixture prior network's layers.
        output_initializer_range (`float`, *optional*, defaults to 0.1):
            The same for the decoder's output layer.
    """

    model_type = "dialogwae"

    vocab_size: int = 10000
    embedding_size: int = 200
    hidden_size: int = 300
    latent_size: int = 200
    context_window: int = 10
    num_floors: int = 2
    num_prior_components: int = 3
    gumbel_temperature: float = 0.1
    gradient_penalty_weight: float = 10.0
    dropout: float = 0.5
    context_dropout: float = 0.25
    initializer_range: float = 0.02
    mixture_initializer_range: float = 0.05
    output_initializer_range: float = 0.1
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
        """Size of an utterance's encoding: both directions' last states."""
        return 2 * self.hidden_size

    @property
    def condition_size(self) -> int:
        """Size of [z; c]: the critic's input and the decoder's initial state."""
        return self.latent_size + self.hidden_size

    def validate_sizes(self) -> None:
        for name in ("vocab_size", "embedding_size", "hidden_size", "latent_size", "context_window", "num_floors",
                     "num_prior_components"):  # fmt: skip
            check_positive_int(name, getattr(self, name))

    def validate_rates(self) -> None:
        for name in ("dropout", "context_dropout"):
            check_in_range(name, getattr(self, name), "in [0, 1)", lambda x: 0 <= x < 1)
        for name in (
            "gumbel_temperature",
            "initializer_range",
            "mixture_initializer_range",
            "output_initializer_range",
        ):
            check_in_range(name, getattr(self, name), "> 0", lambda x: x > 0)
        check_in_range("gradient_penalty_weight", self.gradient_penalty_weight, ">= 0", lambda x: x >= 0)

    def validate_special_token_ids(self) -> None:
        check_special_token_ids(self)

    @classmethod
    def presets(cls) -> list[str]:
        return sorted(cls.named_presets())

    @classmethod
    def named_presets(cls) -> dict[str, dict]:
        """The presets of this configuration class (a subclass names its own)."""
        return DIALOGWAE_PRESETS

    @classmethod
    def from_preset(cls, name: str, **overrides) -> DialogWAEConfig:
        """A named preset (`"dialogwae"`: a Gaussian prior network; `"dialogwae-gmp"`: a mixture of 3), with
        overrides."""
        if name not in cls.named_presets():
            raise ValueError(f"Unknown preset {name!r}; choose one of {cls.presets()}.")
        return cls(**{**cls.named_presets()[name], **overrides})


__all__ = ["DIALOGWAE_PRESETS", "DialogWAEConfig"]
