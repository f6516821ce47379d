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
        _check_utf8(text, where)
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


def _check_utf8(text: str, where: str) -> None:
    """Bytes that are not UTF-8 (a command-line argument in Latin-1, say) reach Python as lone surrogates."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        bad = text[error.start]
        byte = f"byte 0x{ord(bad) - 0xDC00:02x}" if 0xDC80 <= ord(bad) <= 0xDCFF else f"character {bad!r}"
        raise TextInputError(
            f"{where} is not UTF-8 text ({byte} at character {error.start + 1}): write it in UTF-8, e.g. convert "
            "a file with `iconv -f latin1 -t utf-8`."
        ) from None


def _short(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


@torch.no_grad()
def posterior_means(model, tokenizer, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
    """E[z|x] of the latent the decoder reads, (len(texts), latent_size), on the CPU."""
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
    check_texts(texts, tokenizer, allow_unknown=True)
    means = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(list(texts[start : start + batch_size]), padding=True, return_tensors="pt")
        batch = batch.to(model.device)
        means.append(model.encode(batch["input_ids"], batch["attention_mask"]).mean.float().cpu())
    return torch.cat(means)


__all__ = ["TextInputError", "check_texts", "posterior_means"]
