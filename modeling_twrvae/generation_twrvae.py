"""Using a text VAE through its latent space, on top of transformers' `generate()`.

`encode` gives q(z|x), `sample_prior` draws z ~ N(0, I), and `generate(latents=...)` is transformers' own `generate`
(greedy, sampling, beam search, every logits processor) decoding from those latents. The decoder's recurrent state
is the cache: each step reads only the newest token, and beam search reorders the state with the beams.
`reconstruct`, `sample` and `interpolate` do the same from text to text. `fit_aggregate_posterior` fits a
Gaussian mixture to the posterior means of texts (`aggregate_posterior.py`), and `sample(sampler="aggregate")`
draws the latents from it instead of the prior.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
from transformers import GenerationMixin

from .aggregate_posterior import AGGREGATE_POSTERIOR_FILE, DEFAULT_SETTINGS, GaussianMixture, parameters_digest
from .distributions import DiagonalGaussianDistribution
from .latent_arithmetic import analogy_latent, check_strength, check_vector, shift_latents
from .latent_arithmetic import attribute_vector as latent_attribute_vector

SAMPLERS = ("prior", "aggregate")


class TWRVAEDecoderCache:
    """The decoder's recurrent state during generation: `h`, or `(h, c)` for an LSTM, each (layers, batch, hidden).

    It offers what `generate` asks of a cache: `reorder_cache` for beam search, `get_seq_length`, and `is_linear`
    (a recurrent state is a fixed-size summary, like a linear-attention layer's).
    """

    is_croppable = False

    def __init__(self, state: torch.Tensor | tuple[torch.Tensor, ...], seen_tokens: int = 0):
        self.state = state
        self.seen_tokens = seen_tokens

    @property
    def is_linear(self) -> list[bool]:
        return [True]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.seen_tokens

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        """Keep, for every beam, the state of the beam it continues."""
        if isinstance(self.state, tuple):
            self.state = tuple(part.index_select(1, beam_idx.to(part.device)) for part in self.state)
        else:
            self.state = self.state.index_select(1, beam_idx.to(self.state.device))

    def __repr__(self) -> str:
        return f"TWRVAEDecoderCache(seen_tokens={self.seen_tokens})"


_NOT_FORWARDED_AFTER_THE_FIRST_STEP = frozenset(
    {"labels", "inputs_embeds", "is_first_iteration", "position_ids", "token_type_ids", "decoder_attention_mask"}
)


class RecurrentDecoderGenerationMixin(GenerationMixin):
    """transformers' `generate` for a model whose decoder is an RNN conditioned on per-sequence tensors (a latent,
    a context vector): the RNN state is the cache, and the conditioning tensors travel as model keyword arguments,
    which `generate` expands for beams and returned sequences. Shared by the language model and the dialogue model.
    """

    # A recurrent state cannot be cropped back, so generate() must not try assisted or contrastive decoding with it.
    _is_stateful = True

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        return False  # the forward pass makes its own cache (the RNN state)

    def prepare_inputs_for_generation(self, input_ids, cache=None, attention_mask=None, **kwargs):
        if cache is None:
            return super().prepare_inputs_for_generation(
                input_ids, cache=cache, attention_mask=attention_mask, **kwargs
            )
        # Later steps: the state summarises every earlier token, so the model reads the new tokens and the
        # conditioning keyword arguments only; no growing mask, no positions. Built here rather than by the generic
        # method, whose per-step signature inspection of remote-code models cost more than a batch-1 LSTM step.
        new_tokens = kwargs.pop("next_sequence_length", None) or 1
        model_inputs = {"input_ids": input_ids[:, -new_tokens:], "cache": cache}
        for key, value in kwargs.items():
            if key not in _NOT_FORWARDED_AFTER_THE_FIRST_STEP:
                model_inputs[key] = value
        return model_inputs

    def _generate_conditioned(self, inputs, generation_config, **kwargs):
        """`GenerationMixin.generate` with `max_new_tokens` said as a total length (see below)."""
        for name in ("max_new_tokens", "max_length"):
            value = kwargs.get(name, getattr(generation_config, name, None) if generation_config else None)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}: generation needs one token.")
        # `max_new_tokens` is said as a total length, so that the saved default `max_length` does not make generate()
        # warn that both are set; the meaning is unchanged. Where it came in a `generation_config`, the total goes
        # into (a copy of) that config: as a keyword beside it, transformers would warn that passing both is
        # deprecated.
        prompt = inputs if inputs is not None else kwargs.get("input_ids")
        prompt_length = 1 if prompt is None else prompt.shape[1]
        max_new_tokens = kwargs.pop("max_new_tokens", None)
        if max_new_tokens is None and generation_config is not None and generation_config.max_new_tokens is not None:
            generation_config = copy.deepcopy(generation_config)
            if kwargs.get("max_length") is None:
                generation_config.max_length = prompt_length + generation_config.max_new_tokens
                generation_config.max_new_tokens = None
        elif max_new_tokens is not None and kwargs.get("max_length") is None:
            kwargs["max_length"] = prompt_length + max_new_tokens
        elif max_new_tokens is not None:
            kwargs["max_new_tokens"] = max_new_tokens
        return GenerationMixin.generate(self, inputs, generation_config=generation_config, **kwargs)


class TWRVAEGenerationMixin(RecurrentDecoderGenerationMixin):
    """Latent-space generation for [`TWRVAEModel`]: encode, sample the prior, decode with `generate`, text helpers."""

    # The fitted aggregate-posterior mixture (`fit_aggregate_posterior`; saved and loaded with the model), or None.
    # A plain attribute, not a module or buffer: it is not part of the weights.
    aggregate_posterior: GaussianMixture | None = None

    @torch.no_grad()
    def encode(
        self, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None = None, refine_steps: int = 0
    ) -> DiagonalGaussianDistribution:
        """q(z | x) of the latent that the decoder reads: z_T, or the mean or sum of z_1..z_T (closed form).

        `refine_steps` > 0 refines it as SA-VAE does (`TWRVAEConfig.svi_steps`; e.g.
        `refine_steps=model.config.svi_steps`), on the ELBO with KL weight 1."""
        if attention_mask is None:
            attention_mask = input_ids != self.config.pad_token_id
        lengths = self._check_inputs(input_ids, attention_mask)
        steps = self._refinement_steps(refine_steps)
        posterior_mean, posterior_logvar = self.encoder(input_ids, lengths)
        posterior = self.posterior(posterior_mean, posterior_logvar, lengths)
        if steps:
            posterior = self.refine_posterior(posterior, input_ids, attention_mask, steps)
        return posterior

    def sample_prior(
        self, num_samples: int, temperature: float = 1.0, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """`num_samples` latents from the prior N(0, temperature^2 I)."""
        check_count("num_samples", num_samples, 1)
        check_temperature(temperature)
        noise = torch.randn(
            (num_samples, self.config.latent_size), generator=generator, device=self.device, dtype=self.dtype
        )
        return noise * temperature

    def generate(self, inputs=None, generation_config=None, latents: torch.Tensor | None = None, **kwargs):
        """transformers' `generate`, decoding from `latents` (batch, latent_size); every decoding option works.

        Without `inputs`, decoding starts from `<bos>`; with `inputs`, it continues those (right-padding-free)
        prefixes. Each latent gives `num_return_sequences` outputs.
        """
        if latents is None:
            raise ValueError(
                "generate() decodes from latents: pass `latents=model.encode(input_ids).mode()` to reconstruct, or "
                "`latents=model.sample_prior(n)` (or `model.sample_aggregate_posterior(n)`) to sample."
            )
        if latents.dim() != 2 or latents.shape[-1] != self.config.latent_size:
            raise ValueError(
                f"`latents` must have shape (batch_size, {self.config.latent_size}), got {tuple(latents.shape)}."
            )
        if latents.shape[0] == 0:
            raise ValueError("`latents` is empty: pass at least one latent (batch_size >= 1).")
        latents = check_latents(latents.to(device=self.device), self.dtype)
        return self._generate_conditioned(inputs, generation_config, latents=latents, **kwargs)

    def decode_latents(self, latents: torch.Tensor, tokenizer, **generate_kwargs) -> list[str]:
        """Text for each latent (and each of its `num_return_sequences`), greedy unless told otherwise."""
        sequences = self.generate(latents=latents, **generate_kwargs)
        if not isinstance(sequences, torch.Tensor):
            sequences = sequences.sequences
        return decode_text(tokenizer, sequences, self.config)

    def reconstruct(self, texts: Sequence[str], tokenizer, **generate_kwargs) -> list[str]:
        """Encode `texts`, take the posterior mode, and decode it."""
        if isinstance(texts, str):
            texts = [texts]
        if len(texts) == 0:
            raise ValueError("`reconstruct` needs at least one text, got none.")
        batch = tokenizer(list(texts), padding=True, return_tensors="pt").to(self.device)
        latents = self.encode(batch["input_ids"], batch["attention_mask"]).mode()
        return self.decode_latents(latents, tokenizer, **generate_kwargs)

    @torch.no_grad()
    def fit_aggregate_posterior(
        self,
        texts: Sequence[str],
        tokenizer,
        num_components: int = DEFAULT_SETTINGS["num_components"],
        seed: int = DEFAULT_SETTINGS["seed"],
        batch_size: int = 64,
        max_length: int | None = None,
        covariance: str = DEFAULT_SETTINGS["covariance"],
        max_iterations: int = DEFAULT_SETTINGS["max_iterations"],
        tolerance: float = DEFAULT_SETTINGS["tolerance"],
        variance_floor: float = DEFAULT_SETTINGS["variance_floor"],
    ) -> GaussianMixture:
        """Fit a Gaussian mixture to the posterior modes of `texts` (the training texts) and keep it on the model
        (`model.aggregate_posterior`, settings in `config.aggregate_posterior`); `save_pretrained` stores it in
        `aggregate_posterior.safetensors`. EM from a k-means++ start seeded with `seed` (`aggregate_posterior.py`);
        `max_length` truncates the texts as training did (`--max_length`). Returns the mixture."""
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
        if len(texts) < max(1, num_components if isinstance(num_components, int) else 1):
            raise ValueError(
                f"`fit_aggregate_posterior` got {len(texts)} texts for {num_components} components: give at least as "
                "many texts as components (the training texts), or ask for fewer components."
            )
        was_training = self.training
        self.eval()  # no dropout in the encoder
        try:
            means = []
            for start in range(0, len(texts), batch_size):
                chunk = texts[start : start + batch_size]
                options = {"truncation": True, "max_length": max_length} if max_length else {}
                batch = tokenizer(chunk, padding=True, return_tensors="pt", **options).to(self.device)
                means.append(self.encode(batch["input_ids"], batch["attention_mask"]).mode().float().cpu())
        finally:
            self.train(was_training)
        mixture = GaussianMixture.fit(
            torch.cat(means),
            num_components=num_components,
            covariance=covariance,
            seed=seed,
            max_iterations=max_iterations,
            tolerance=tolerance,
            variance_floor=variance_floor,
        )
        self.set_aggregate_posterior(mixture)
        return mixture

    def set_aggregate_posterior(self, mixture: GaussianMixture | None) -> None:
        """Attach `mixture` (fitted to these weights; None removes it) and record its settings in the config."""
        if mixture is not None and mixture.dim != self.config.latent_size:
            raise ValueError(
                f"The mixture is over {mixture.dim} dimensions, but the model's latent has {self.config.latent_size}."
            )
        self.aggregate_posterior = mixture
        self._aggregate_posterior_weights = parameters_digest(self) if mixture is not None else None
        self.config.aggregate_posterior = (
            None if mixture is None else {"file": AGGREGATE_POSTERIOR_FILE, **mixture.settings}
        )

    def sample_aggregate_posterior(
        self, num_samples: int, generator: torch.Generator | None = None, temperature: float = 1.0
    ) -> torch.Tensor:
        """`num_samples` latents from the fitted aggregate-posterior mixture (`temperature` scales each component's
        standard deviation). `ValueError` when none is fitted."""
        mixture = self.aggregate_posterior
        if mixture is None:
            reason = getattr(self, "_aggregate_posterior_refused", None)
            raise ValueError(
                (f"{reason} " if reason else "This model has no aggregate-posterior mixture. ")
                + "Fit one with `model.fit_aggregate_posterior(training_texts, tokenizer)` (`save_pretrained` then "
                "stores it beside the weights), or train with `training/train.py --aggregate_posterior_components K`; "
                "or sample the prior (`sampler='prior'`)."
            )
        latents = mixture.sample(num_samples, generator=generator, temperature=temperature)
        return latents.to(device=self.device, dtype=self.dtype)

    def draw_latents(
        self, sampler: str, num_samples: int, temperature: float = 1.0, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Latents of `sampler`: `"prior"` (N(0, temperature^2 I)) or `"aggregate"` (the fitted mixture)."""
        if sampler not in SAMPLERS:
            raise ValueError(f"`sampler` must be one of {list(SAMPLERS)}, got {sampler!r}.")
        if sampler == "aggregate":
            check_count("num_samples", num_samples, 1)
            check_temperature(temperature)
            return self.sample_aggregate_posterior(num_samples, generator=generator, temperature=temperature)
        return self.sample_prior(num_samples, temperature=temperature, generator=generator)

    def sample(
        self,
        num_samples: int,
        tokenizer,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        sampler: str = "prior",
        **generate_kwargs,
    ) -> list[str]:
        """Decode `num_samples` latents drawn from the prior (`sampler="prior"`; `temperature` scales the prior, not
        the softmax) or from the fitted aggregate posterior (`sampler="aggregate"`, see `fit_aggregate_posterior`;
        `temperature` scales its components' standard deviations)."""
        latents = self.draw_latents(sampler, num_samples, temperature=temperature, generator=generator)
        return self.decode_latents(latents, tokenizer, **generate_kwargs)

    def interpolate(
        self, text_a: str, text_b: str, tokenizer, steps: int = 11, method: str = "linear", **generate_kwargs
    ) -> tuple[list[float], list[str]]:
        """Decode `steps` points between the posterior modes of `text_a` (alpha = 0) and `text_b` (alpha = 1).

        `method` is `"linear"`, (1 - alpha) z_a + alpha z_b, or `"slerp"`, along the great circle (Shoemake, 1985;
        White, 2016), which keeps intermediate points at the norm typical of the prior. Returns the alphas and the
        sentences.
        """
        check_count("steps", steps, 2, "both ends included")
        batch = tokenizer([text_a, text_b], padding=True, return_tensors="pt").to(self.device)
        start, end = self.encode(batch["input_ids"], batch["attention_mask"]).mode()
        alphas = torch.linspace(0.0, 1.0, steps, device=self.device, dtype=start.dtype)
        latents = interpolate_latents(start, end, alphas, method)
        return alphas.tolist(), self.decode_latents(latents, tokenizer, **generate_kwargs)

    # Latent arithmetic (Optimus, Li et al., 2020): `latent_arithmetic.py` holds the tensor functions.

    @torch.no_grad()
    def posterior_modes(self, texts: Sequence[str], tokenizer, batch_size: int = 64) -> torch.Tensor:
        """The posterior modes (= means) of `texts`' decoded latent, (len(texts), latent_size), on the model's device,
        encoded `batch_size` texts at a time."""
        texts = _text_list(texts, "texts")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
        modes = []
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start : start + batch_size], padding=True, return_tensors="pt").to(self.device)
            modes.append(self.encode(batch["input_ids"], batch["attention_mask"]).mode())
        return torch.cat(modes)

    def attribute_vector(
        self, texts_with: Sequence[str], texts_without: Sequence[str], tokenizer, batch_size: int = 64
    ) -> torch.Tensor:
        """The mean posterior mode of `texts_with` (texts that have a property) minus that of `texts_without` (texts
        that do not): a (latent_size,) float32 tensor on the CPU, for `shift`. Texts of the model's training domain
        that differ mainly in the property give the cleanest vector."""
        texts_with = _text_list(texts_with, "texts_with")
        texts_without = _text_list(texts_without, "texts_without")
        with_modes = self.posterior_modes(texts_with, tokenizer, batch_size)
        without_modes = self.posterior_modes(texts_without, tokenizer, batch_size)
        return latent_attribute_vector(with_modes, without_modes).float().cpu()

    @property
    def attribute_vectors(self) -> dict[str, torch.Tensor]:
        """The model's named attribute vectors (e.g. the Yelp model's `"positive"`), saved beside the weights by
        `save_pretrained` (attribute_vectors.safetensors) and loaded with them; `shift` takes their names."""
        return self.__dict__.setdefault("_attribute_vectors", {})

    def add_attribute_vector(self, name: str, vector: torch.Tensor) -> None:
        """Keep `vector` (from `attribute_vector`) under `name`, so that it is saved with these weights and
        `shift(texts, name, ...)` finds it. A vector made with other weights is not saved (the weights changed)."""
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"`name` must be a non-empty string, got {name!r}.")
        self.attribute_vectors[name] = check_vector(vector, self.config.latent_size).detach().float().cpu()
        self.__dict__["_attribute_vectors_weights"] = parameters_digest(self)

    def attribute_vectors_to_save(self) -> dict[str, torch.Tensor]:
        """The named vectors if they still belong to the weights (made with them), else none, with a warning."""
        if self.attribute_vectors and self.__dict__.get("_attribute_vectors_weights") != parameters_digest(self):
            import warnings

            warnings.warn(
                f"The attribute vectors {sorted(self.attribute_vectors)} were made with other weights (they changed "
                "since): they are not saved. Make them again with `model.attribute_vector(...)`.",
                stacklevel=3,
            )
            return {}
        return dict(self.attribute_vectors)

    def _vector(self, vector) -> torch.Tensor:
        if isinstance(vector, str):
            if vector not in self.attribute_vectors:
                known = sorted(self.attribute_vectors) or "none"
                raise ValueError(
                    f"The model has no attribute vector {vector!r} (it has: {known}). Make one with "
                    "`model.attribute_vector(texts_with, texts_without, tokenizer)`."
                )
            return self.attribute_vectors[vector]
        return check_vector(vector, self.config.latent_size)

    def shift(
        self, texts: Sequence[str], vector: torch.Tensor | str, tokenizer, strength: float = 1.0, **generate_kwargs
    ) -> list[str]:
        """Reconstruct each text with its posterior mode moved by `strength` * `vector` (an `attribute_vector`, or
        the name of one of the model's `attribute_vectors`): strength 0 is the plain reconstruction, 1 the whole
        vector, a negative strength moves away from the property. Greedy unless told otherwise; one text (or
        `num_return_sequences`) per input."""
        texts = _text_list(texts, "texts")
        vector = self._vector(vector)
        strength = check_strength(strength)
        batch = tokenizer(texts, padding=True, return_tensors="pt").to(self.device)
        latents = self.encode(batch["input_ids"], batch["attention_mask"]).mode()
        return self.decode_latents(shift_latents(latents, vector, strength), tokenizer, **generate_kwargs)

    def analogy(self, text_a: str, text_b: str, text_c: str, tokenizer, strength: float = 1.0, **generate_kwargs):
        """a : b :: c : ?, decoded from z_c + strength * (z_b - z_a) (posterior modes): `text_c` changed as
        `text_a` changes into `text_b`. Returns one text (a list with `num_return_sequences` > 1)."""
        for name, text in (("text_a", text_a), ("text_b", text_b), ("text_c", text_c)):
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"`{name}` must be a non-empty text, got {text!r}.")
        strength = check_strength(strength)
        z_a, z_b, z_c = self.posterior_modes([text_a, text_b, text_c], tokenizer)
        texts = self.decode_latents(analogy_latent(z_a, z_b, z_c, strength)[None], tokenizer, **generate_kwargs)
        return texts[0] if len(texts) == 1 else texts


def check_count(name: str, value, minimum: int, why: str = "") -> None:
    """`ValueError` unless `value` is a whole number (not a bool) of at least `minimum`."""
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"`{name}` must be a whole number >= {minimum}{f' ({why})' if why else ''}, got {value!r}.")


def check_temperature(temperature) -> None:
    """`ValueError` unless `temperature` is a finite number >= 0 (it scales the prior's or the mixture's spread)."""
    import math
    import numbers

    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or not math.isfinite(temperature):
        raise ValueError(f"`temperature` must be a finite number >= 0, got {temperature!r}.")
    if temperature < 0:
        raise ValueError(f"`temperature` must be >= 0, got {temperature}.")


def _text_list(texts, name: str) -> list[str]:
    """`texts` as a list of non-empty strings (one string is a list of one); `ValueError` naming `name` otherwise."""
    if isinstance(texts, str):
        texts = [texts]
    if texts is None or isinstance(texts, (torch.Tensor, dict)) or not hasattr(texts, "__iter__"):
        raise ValueError(f"`{name}` must be a list of texts, got {type(texts).__name__}.")
    texts = list(texts)
    if not texts:
        raise ValueError(f"`{name}` needs at least one text, got none.")
    for number, text in enumerate(texts, 1):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"`{name}`: text {number} is empty or not a string ({text!r}); give sentences.")
    return texts


def check_latents(latents: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Latents in the model's dtype; `ValueError` for non-float or non-finite ones, which would decode to nonsense."""
    if not torch.is_floating_point(latents):
        raise ValueError(f"`latents` must be floating point, got {latents.dtype}.")
    finite = torch.isfinite(latents)
    if not finite.all():
        bad = (~finite).any(dim=-1).nonzero().flatten().tolist()
        raise ValueError(
            f"`latents` holds NaN or infinite values (rows {bad[:10]}{' ...' if len(bad) > 10 else ''}): they decode "
            "to nonsense. Check the model's weights and the encoder's output (`model.encode(...)`)."
        )
    return latents.to(dtype)


def decode_text(tokenizer, sequences, config) -> list[str]:
    """Text of each id sequence without `<bos>`, `<eos>` and padding, but with `<unk>`: unlike
    `skip_special_tokens=True`, an unknown word stays visible, as it is in the model's view of the text."""
    drop = {config.bos_token_id, config.eos_token_id, config.pad_token_id}
    rows = sequences.tolist() if isinstance(sequences, torch.Tensor) else sequences
    return [tokenizer.decode([token for token in row if token not in drop]) for row in rows]


def interpolate_latents(start: torch.Tensor, end: torch.Tensor, alphas: torch.Tensor, method: str) -> torch.Tensor:
    """(len(alphas), latent_size) points from `start` to `end`; `alphas` 0 and 1 give the ends exactly."""
    weights = alphas[:, None]
    if method == "linear":
        return (1 - weights) * start + weights * end
    if method != "slerp":
        raise ValueError(f"`method` must be 'linear' or 'slerp', got {method!r}.")
    cosine = torch.dot(start, end) / (start.norm() * end.norm()).clamp_min(1e-12)
    angle = torch.arccos(cosine.clamp(-1.0, 1.0))
    if angle.abs() < 1e-6 or math.isclose(float(angle), math.pi, abs_tol=1e-6):
        # (anti)parallel ends: the great circle is not defined, the straight line is the natural fallback
        return (1 - weights) * start + weights * end
    return (torch.sin((1 - weights) * angle) * start + torch.sin(weights * angle) * end) / torch.sin(angle)


__all__ = [
    "SAMPLERS",
    "RecurrentDecoderGenerationMixin",
    "TWRVAEDecoderCache",
    "TWRVAEGenerationMixin",
    "check_latents",
    "decode_text",
    "interpolate_latents",
]
