"""Texts in and out of a text VAE: the checks that turn unusable input into a clear message, and posterior means.

Shared by the `twrvae` command, the "text-vae" pipeline and the demo page; saved beside a model's code (the pipeline
imports it), so it imports only from installed libraries.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class TextInputError(ValueError):
    """A text the model cannot take: empty, made only of out-of-vocabulary words, or longer than it decodes."""


def check_texts(texts: Sequence[str], tokenizer, max_tokens: int | None = None, allow_unknown: bool = False) -> None:
    """Raise `TextInputError`, naming the text and what to do, for input the model cannot reconstruct."""
    if isinstance(texts, str):
        texts = [texts]
    if not texts:
        raise TextInputError("No text given: write a sentence (one text a line).")
    for number, text in enumerate(texts, start=1):
        where = f"Text {number}" if len(texts) > 1 else "The text"
        if not isinstance(text, str) or not text.strip():
            raise TextInputError(f"{where} is empty: write a sentence.")
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if not allow_unknown and all(token == tokenizer.unk_token_id for token in ids):
            raise TextInputError(
                f"{where} ({_short(text)}) has no word in the model's vocabulary ({len(tokenizer)} words, lower "
                "case as in its training corpus): every word would be <unk>. Use words of the training domain."
            )
        # <bos> and <eos> count: the model's generation length includes them
        if max_tokens is not None and len(ids) + 2 > max_tokens:
            raise TextInputError(
                f"{where} is {len(ids)} words long; this model reads and writes at most {max_tokens - 2} "
                "(generation_config.max_length, with <bos> and <eos>). Shorten it."
            )


def _short(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


@torch.no_grad()
def posterior_means(model, tokenizer, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
    """E[z|x] of the latent the decoder reads, (len(texts), latent_size), on the CPU."""
    if isinstance(texts, str):
        texts = [texts]
    check_texts(texts, tokenizer, allow_unknown=True)
    means = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(list(texts[start : start + batch_size]), padding=True, return_tensors="pt")
        batch = batch.to(model.device)
        means.append(model.encode(batch["input_ids"], batch["attention_mask"]).mean.float().cpu())
    return torch.cat(means)


__all__ = ["TextInputError", "check_texts", "posterior_means"]
