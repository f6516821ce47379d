"""A model's tokenizer read from a folder or the Hub, with a missing or damaged tokenizer.json said as such."""

from __future__ import annotations

from pathlib import Path


def check_tokenizer_json(source, required: bool = True) -> None:
    """For a local folder: `ValueError` when its tokenizer.json is damaged, or missing (when `required`), said as such
    rather than as a JSON parser's or a slow-tokenizer converter's message (a Hub id is left to `load_tokenizer`)."""
    from tokenizers import Tokenizer

    folder = Path(str(source))
    if not folder.is_dir():
        return
    if not (folder / "tokenizer.json").is_file():
        if required:
            raise ValueError(_no_tokenizer(source))
        return
    try:
        Tokenizer.from_file(str(folder / "tokenizer.json"))
    except Exception as error:  # the tokenizers library raises a bare Exception for a file it cannot parse
        message = " ".join(str(error).split()) or type(error).__name__
        raise ValueError(
            f"{folder / 'tokenizer.json'} could not be read ({message}): the file is damaged. Save the tokenizer "
            "again with `tokenizer.save_pretrained(folder)`, or copy tokenizer.json from where the model came from."
        ) from error


def load_tokenizer(source, **kwargs):
    """`AutoTokenizer.from_pretrained(source)`, with a missing or damaged tokenizer.json as a clear `ValueError`."""
    from transformers import AutoTokenizer

    check_tokenizer_json(source)
    try:
        return AutoTokenizer.from_pretrained(source, **kwargs)
    except ValueError as error:
        if "sentencepiece" in str(error):  # transformers' words, for a repository without tokenizer.json
            raise ValueError(_no_tokenizer(source)) from error
        raise


def _no_tokenizer(source) -> str:
    return (
        f"{source} has no tokenizer.json, the model's tokenizer: save it beside the model with "
        "`tokenizer.save_pretrained(folder)` (training/train.py does), or copy it from where the model came from."
    )


__all__ = ["check_tokenizer_json", "load_tokenizer"]
