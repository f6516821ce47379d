"""Configuration of SeqGAN for dialogue (Li et al., EMNLP 2017), a baseline of TWR-VAE's Table 5."""

from __future__ import annotations

from transformers import PretrainedConfig

from .configuration_twrvae import CheckedConfigMixin, check_in_range, check_positive_int, check_special_token_ids

# Citations `ADV:path:line` are the authors' code, jiweil/Neural-Dialogue-Generation at commit 8ad5bfa.
SEQGAN_PRESETS: dict[str, dict] = {
    # REINFORCE with a reward for every prefix, from Monte Carlo completions (ADV:Adversarial/Reinforce/parse.lua:16-17).
    "seqgan": {"monte_carlo_samples": 5},
}


class SeqGANConfig(CheckedConfigMixin, PretrainedConfig):
    r"""
    Configuration of a [`SeqGANModel`]: adversarial dialogue generation of Li et al. (EMNLP 2017). A response
    generator (the package's dialogue encoders and a GRU decoder started from the context, no latent) is trained by
    likelihood, and then by REINFORCE with a reward from a discriminator that tells human (context, response) pairs
    from generated ones. Defaults are the authors' (ADV:Adversarial/Reinforce/parse.lua, Atten/parse.lua,
    Adversarial/discriminative/dis_parse.lua).

    Args:
        vocab_size (`int`, *optional*, defaults to 10000):
            Number of tokens in the vocabulary.
        embedding_size (`int`, *optional*, defaults to 512):
            Size of the word embeddings of the generator (its encoders and decoder share them) and of the
            discriminator (its own).
        hidden_size (`int`, *optional*, defaults to 512):
            Hidden size of the utterance encoder (each direction), the context encoder and the decoder.
        discriminator_hidden_size (`int`, *optional*, defaults to 512):
            Hidden size of the discriminator's word-level and utterance-level LSTMs.
        context_window (`int`, *optional*, defaults to 10):
            How many utterances before a response make its context.
        num_floors (`int`, *optional*, defaults to 2):
            Size of the one-hot of who speaks beside each context utterance.
        monte_carlo_samples (`int`, *optional*, defaults to 5):
            Completions sampled from each prefix of a generated response to give that prefix its reward; 0 gives
            every token the whole response's reward (the authors' `vanillaReinforce`).
        reward_scale (`float`, *optional*, defaults to 0.5):
            Factor on the policy gradient (the authors' `Timeslr`).
        max_response_length (`int`, *optional*, defaults to 40):
            Most tokens of a response sampled in training, `<eos>` included.
        dropout (`float`, *optional*, defaults to 0.2):
            Dropout on the generator's word embeddings.
        context_dropout (`float`, *optional*, defaults to 0.2):
            Dropout on the context encoder's inputs.
        discriminator_dropout (`float`, *optional*, defaults to 0.2):
            Dropout on the discriminator's LSTM inputs.
        initializer_range (`float`, *optional*, defaults to 0.1):
            Every weight starts from U(-initializer_range, initializer_range), except the baseline, which starts at 0.
    """

    model_type = "seqgan"

    vocab_size: int = 10000
    embedding_size: int = 512
    hidden_size: int = 512
    discriminator_hidden_size: int = 512
    context_window: int = 10
    num_floors: int = 2
    monte_carlo_samples: int = 5
    reward_scale: float = 0.5
    max_response_length: int = 40
    dropout: float = 0.2
    context_dropout: float = 0.2
    discriminator_dropout: float = 0.2
    initializer_range: float = 0.1
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

    def validate_sizes(self) -> None:
        for name in ("vocab_size", "embedding_size", "hidden_size", "discriminator_hidden_size", "context_window",
                     "num_floors", "max_response_length"):  # fmt: skip
            check_positive_int(name, getattr(self, name))
        check_in_range(
            "monte_carlo_samples",
            self.monte_carlo_samples,
            "a non-negative integer",
            lambda x: isinstance(x, int) and not isinstance(x, bool) and x >= 0,
        )

    def validate_rates(self) -> None:
        for name in ("dropout", "context_dropout", "discriminator_dropout"):
            check_in_range(name, getattr(self, name), "in [0, 1)", lambda x: 0 <= x < 1)
        check_in_range("initializer_range", self.initializer_range, "> 0", lambda x: x > 0)
        check_in_range("reward_scale", self.reward_scale, "> 0", lambda x: x > 0)

    def validate_special_token_ids(self) -> None:
        check_special_token_ids(self)

    @classmethod
    def presets(cls) -> list[str]:
        return sorted(SEQGAN_PRESETS)

    @classmethod
    def from_preset(cls, name: str, **overrides) -> SeqGANConfig:
        """A named preset (`"seqgan"`: Monte Carlo rewards from 5 completions), with overrides."""
        if name not in SEQGAN_PRESETS:
            raise ValueError(f"Unknown preset {name!r}; choose one of {cls.presets()}.")
        return cls(**{**SEQGAN_PRESETS[name], **overrides})


__all__ = ["SEQGAN_PRESETS", "SeqGANConfig"]
