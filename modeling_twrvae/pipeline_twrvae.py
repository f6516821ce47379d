"""The "text-vae" pipeline: `pipeline("text-vae", model=folder_or_repo, trust_remote_code=True)`.

Calling it reconstructs texts (text -> posterior mode -> text); its methods `sample`, `interpolate` and `encode`
reach the rest of the latent space. Saving a model records the pipeline in `config.custom_pipelines` and writes this
file beside the model's code, so that the remote-code load finds it where this package is not installed; this file
therefore imports only from its own folder (relative imports) and from installed libraries.

Saved models also name `TextVAEFeatureExtractionPipeline` for the "feature-extraction" task: transformers' own
feature-extraction pipeline returns a model's first output, which for a text VAE is its loss; this one returns the
posterior mean of the decoded latent of each input.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import FeatureExtractionPipeline, Pipeline
from transformers.modeling_outputs import BaseModelOutput

from .generation_twrvae import decode_text
from .texts import TextInputError, check_texts, posterior_means

TEXT_VAE_TASK = "text-vae"
FEATURE_EXTRACTION_TASK = "feature-extraction"
# What `config.custom_pipelines` holds: transformers' own format (see `Pipeline.save_pretrained`).
CUSTOM_PIPELINES = {
    TEXT_VAE_TASK: {"impl": "pipeline_twrvae.TextVAEPipeline", "pt": ["AutoModel"], "type": "text"},
    FEATURE_EXTRACTION_TASK: {
        "impl": "pipeline_twrvae.TextVAEFeatureExtractionPipeline",
        "pt": ["AutoModel"],
        "type": "text",
    },
}


def record_pipeline(config) -> None:
    """Mark `config` so that the saved model names this pipeline for the "text-vae" task."""
    config.custom_pipelines = {task: dict(info) for task, info in CUSTOM_PIPELINES.items()}


class TextVAEPipeline(Pipeline):
    """Reconstruct texts through a text VAE's latent space; `sample`, `interpolate` and `encode` do the rest.

    ```python
    >>> from transformers import pipeline
    >>> vae = pipeline("text-vae", model="outputs/demo", trust_remote_code=True)
    >>> vae("the eagle is a pub near the river .")  # {"text": ..., "reconstruction": ...}
    >>> vae.sample(3, temperature=1.0, seed=0)
    >>> vae.sample(3, seed=0, sampler="aggregate")  # from the fitted aggregate posterior, where the model has one
    >>> vae.interpolate("a cheap pub .", "an expensive restaurant .", steps=5, method="slerp")
    ```

    Call arguments: `max_new_tokens`, `num_beams`, `do_sample`, `top_k`, `top_p`, `num_return_sequences`,
    `return_latent` (the posterior mode, a list of floats), and `generate_kwargs` for any other `generate()` option.
    Greedy by default. With `num_return_sequences` > 1 each output also has `reconstructions`, that input's
    sequences. A list of texts gives a list of outputs, one per text in order (`[]` for `[]`), and `batch_size`
    does not change them (with sampling, only the random draws differ).
    """

    _GENERATE_KEYS = ("max_new_tokens", "num_beams", "do_sample", "top_k", "top_p", "num_return_sequences")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.tokenizer is None:
            source = getattr(self.model, "name_or_path", "") or "the model"
            raise ValueError(
                f"The text-vae pipeline needs the model's tokenizer, and none was found with {source} (no "
                "tokenizer.json): save it there with `tokenizer.save_pretrained(folder)`, or pass "
                "`tokenizer=` to `pipeline(...)`."
            )

    def _sanitize_parameters(self, return_latent=None, generate_kwargs=None, **kwargs):
        forward = dict(generate_kwargs or {})
        for key in self._GENERATE_KEYS:
            if key in kwargs:
                forward[key] = kwargs.pop(key)
        if kwargs:
            raise TypeError(
                f"Unknown argument(s) {sorted(kwargs)}: use generate_kwargs={{...}} for generate() options."
            )
        postprocess = {} if return_latent is None else {"return_latent": return_latent}
        return {}, {"generate_kwargs": forward} if forward else {}, postprocess

    @property
    def max_tokens(self) -> int | None:
        return getattr(self.model.generation_config, "max_length", None)

    def preprocess(self, text):
        check_texts([text], self.tokenizer, self.max_tokens)
        inputs = self.tokenizer(text, return_tensors="pt")
        return {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"], "text": text}

    def __call__(self, inputs, *args, **kwargs):
        if isinstance(inputs, (list, tuple)) and len(inputs) == 0:
            return []  # a list in, a list out, one output per text (transformers' Pipeline fails on `inputs[0]`)
        return super().__call__(inputs, *args, **kwargs)

    def _forward(self, model_inputs, generate_kwargs=None):
        latents = self.model.encode(model_inputs["input_ids"], model_inputs["attention_mask"]).mode()
        sequences = self.model.generate(latents=latents, **(generate_kwargs or {}))
        if not isinstance(sequences, torch.Tensor):
            sequences = sequences.sequences
        # generate() gives (batch * num_return_sequences, length), input-major: one row per input here, so that
        # transformers' unbatching (row i of every value goes to input i) keeps each input's own sequences
        sequences = sequences.reshape(latents.shape[0], -1, sequences.shape[-1])
        return {"sequences": sequences, "latents": latents, "text": model_inputs["text"]}

    def postprocess(self, model_outputs, return_latent=False):
        texts = decode_text(self.tokenizer, model_outputs["sequences"][0], self.model.config)
        text = model_outputs["text"]
        output = {"text": text[0] if isinstance(text, list) else text, "reconstruction": texts[0]}
        if len(texts) > 1:
            output["reconstructions"] = texts
        if return_latent:
            output["latent"] = model_outputs["latents"].reshape(-1).tolist()
        return output

    def sample(
        self,
        num_samples: int = 1,
        temperature: float = 1.0,
        seed: int | None = None,
        sampler: str = "prior",
        **generate_kwargs,
    ) -> list[str]:
        """Texts decoded from `num_samples` latents of the prior N(0, temperature^2 I) (`sampler="prior"`) or of
        the model's fitted aggregate posterior (`sampler="aggregate"`, see `model.fit_aggregate_posterior`); greedy
        unless told."""
        generator = None
        if seed is not None:
            torch.manual_seed(seed)  # for do_sample=True
            generator = torch.Generator(device=self.model.device).manual_seed(seed)
        return self.model.sample(num_samples, self.tokenizer, temperature=temperature, generator=generator,
                                 sampler=sampler, **generate_kwargs)  # fmt: skip

    def interpolate(
        self, text_a: str, text_b: str, steps: int = 11, method: str = "linear", **generate_kwargs
    ) -> list[dict]:
        """The path between the posterior modes of two texts: `steps` dicts of `alpha` and `text`."""
        check_texts([text_a, text_b], self.tokenizer, self.max_tokens)
        alphas, texts = self.model.interpolate(
            text_a, text_b, self.tokenizer, steps=steps, method=method, **generate_kwargs
        )
        return [{"alpha": alpha, "text": text} for alpha, text in zip(alphas, texts, strict=True)]

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        """Posterior means of the decoded latent, (len(texts), latent_size), on the CPU."""
        return posterior_means(self.model, self.tokenizer, texts, batch_size)

    # Latent arithmetic (Optimus, Li et al., 2020): the model's `attribute_vector`, `shift` and `analogy`.

    def attribute_vector(
        self, texts_with: Sequence[str], texts_without: Sequence[str], batch_size: int = 64
    ) -> torch.Tensor:
        """The mean posterior mode of `texts_with` minus that of `texts_without`, (latent_size,) on the CPU."""
        for texts in (texts_with, texts_without):
            check_texts(texts, self.tokenizer, allow_unknown=True)
        return self.model.attribute_vector(texts_with, texts_without, self.tokenizer, batch_size=batch_size)

    def shift(
        self, texts: Sequence[str] | str, vector: torch.Tensor | str, strength: float = 1.0, **generate_kwargs
    ) -> list[dict]:
        """Each text reconstructed with its latent moved by `strength` * `vector` (a tensor, or the name of one of
        the model's own vectors: `vae.shift(texts, "positive", strength=1.5)` makes Yelp reviews positive, a
        negative strength negative): dicts of `text`, `strength` and `shifted` (one per text, in order; with
        `num_return_sequences` > 1 also `shifted_all`)."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        check_texts(texts, self.tokenizer, self.max_tokens)
        outputs = self.model.shift(texts, vector, self.tokenizer, strength=strength, **generate_kwargs)
        per_text = len(outputs) // len(texts)  # num_return_sequences
        records = []
        for index, text in enumerate(texts):
            mine = outputs[index * per_text : (index + 1) * per_text]
            record = {"text": text, "strength": float(strength), "shifted": mine[0]}
            if per_text > 1:
                record["shifted_all"] = mine
            records.append(record)
        return records

    def analogy(self, text_a: str, text_b: str, text_c: str, strength: float = 1.0, **generate_kwargs) -> str:
        """a : b :: c : ?: `text_c` changed as `text_a` changes into `text_b` (z_c + strength * (z_b - z_a))."""
        check_texts([text_a, text_b, text_c], self.tokenizer, self.max_tokens)
        return self.model.analogy(text_a, text_b, text_c, self.tokenizer, strength=strength, **generate_kwargs)


class TextVAEFeatureExtractionPipeline(FeatureExtractionPipeline):
    """`pipeline("feature-extraction", model=folder, trust_remote_code=True)` for a text VAE: for each input, the
    posterior mean E[z|x] of the latent that the decoder reads (as `TextVAEPipeline.encode` gives it), a nested list
    of shape (1, latent_size) (a tensor with `return_tensors=True`), like the (1, ..., hidden_size) of transformers'
    feature extraction. transformers' own pipeline would return the model's first output, its loss."""

    def __call__(self, *args, **kwargs):
        if len(args) == 1 and isinstance(args[0], (list, tuple)) and len(args[0]) == 0:
            return []
        return super().__call__(*args, **kwargs)

    def preprocess(self, inputs, **tokenize_kwargs):
        check_texts([inputs], self.tokenizer, allow_unknown=True)
        return super().preprocess(inputs, **tokenize_kwargs)

    def _forward(self, model_inputs):
        posterior = self.model.encode(model_inputs["input_ids"], model_inputs["attention_mask"])
        return BaseModelOutput(last_hidden_state=posterior.mean.float())


def register_pipeline() -> None:
    """Make `pipeline("text-vae", ...)` known to transformers (done when this module is imported)."""
    from transformers import AutoModel
    from transformers.pipelines import PIPELINE_REGISTRY

    if TEXT_VAE_TASK not in PIPELINE_REGISTRY.supported_tasks:
        PIPELINE_REGISTRY.register_pipeline(
            TEXT_VAE_TASK, pipeline_class=TextVAEPipeline, pt_model=AutoModel, type="text"
        )


register_pipeline()

__all__ = [
    "CUSTOM_PIPELINES",
    "FEATURE_EXTRACTION_TASK",
    "TEXT_VAE_TASK",
    "TextInputError",
    "TextVAEFeatureExtractionPipeline",
    "TextVAEPipeline",
    "check_texts",
    "record_pipeline",
    "register_pipeline",
]
