"""Checks that turn a broken checkpoint folder or a mismatched tokenizer into an error that says what to do."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from safetensors import safe_open

WEIGHTS_NAME = "model.safetensors"
WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
TOKENIZER_FILE = "tokenizer.json"
SPECIAL_TOKENS = {"pad_token_id": "<pad>", "unk_token_id": "<unk>", "bos_token_id": "<bos>", "eos_token_id": "<eos>"}
FINGERPRINT_KEY = "vocab_fingerprint"


def vocabulary_fingerprint(vocabulary: dict[str, int]) -> str:
    """A short hash of the token -> id mapping: equal only when every word has the same id (a reordered or retrained
    vocabulary of the same size differs). Store it as `config.vocab_fingerprint` to have loading check it."""
    tokens = sorted(vocabulary.items(), key=lambda item: item[1])
    text = "\n".join(f"{token_id}\t{token}" for token, token_id in tokens)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def check_model_folder(folder: str | Path, subfolder: str = "") -> None:
    """Raise `OSError` for missing or unreadable weights, `ValueError` for a tokenizer that does not fit the model."""
    folder = Path(folder) / subfolder
    config_file = folder / "config.json"
    if not config_file.is_file():
        return  # transformers says itself that config.json is missing
    index_file = folder / WEIGHTS_INDEX_NAME
    if index_file.is_file():
        weight_files = sorted({folder / name for name in json.loads(index_file.read_text())["weight_map"].values()})
    else:
        weight_files = [folder / WEIGHTS_NAME]
    for weight_file in weight_files:
        if not weight_file.is_file():
            raise OSError(
                f"{weight_file} is missing: the folder has a config but not the model weights. Copy the whole folder "
                "that `save_pretrained` wrote (or download the repository again)."
            )
        try:
            with safe_open(str(weight_file), framework="pt") as weights:
                weights.keys()
        except Exception as error:
            raise OSError(
                f"{weight_file} is not a readable safetensors file ({error}): the checkpoint is corrupt or was only "
                "partly written. Download it again, or save the model again with `save_pretrained`."
            ) from error
    tokenizer_file = folder / TOKENIZER_FILE
    if tokenizer_file.is_file():
        check_tokenizer_file(tokenizer_file, json.loads(config_file.read_text()))


def check_tokenizer_file(tokenizer_file: str | Path, config: dict) -> None:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    _check_vocabulary(
        source=str(tokenizer_file),
        vocab_size=tokenizer.get_vocab_size(with_added_tokens=True),
        token_ids={key: tokenizer.token_to_id(token) for key, token in SPECIAL_TOKENS.items()},
        config=config,
        vocabulary=lambda: tokenizer.get_vocab(with_added_tokens=True),
    )


def check_tokenizer(tokenizer, config) -> None:
    """Raise `ValueError` unless `tokenizer` (a transformers tokenizer) produces the ids that `config`'s model knows."""
    _check_vocabulary(
        source=f"the tokenizer ({type(tokenizer).__name__}, {getattr(tokenizer, 'name_or_path', '') or 'in memory'})",
        vocab_size=len(tokenizer),
        token_ids={key: tokenizer.convert_tokens_to_ids(token) for key, token in SPECIAL_TOKENS.items()},
        config=config.to_dict() if hasattr(config, "to_dict") else config,
        vocabulary=tokenizer.get_vocab,
    )


def _check_vocabulary(source: str, vocab_size: int, token_ids: dict, config: dict, vocabulary=None) -> None:
    expected = config.get("vocab_size")
    if vocab_size != expected:
        raise ValueError(
            f"{source} has {vocab_size} tokens but the model's config has vocab_size={expected}: they were not made "
            "together. Load the tokenizer saved with the model, or train a new model on this tokenizer."
        )
    for key, token_id in token_ids.items():
        if key in config and token_id != config[key]:
            raise ValueError(
                f"{source} maps {SPECIAL_TOKENS[key]} to id {token_id} but the model's config has {key}="
                f"{config[key]}: they were not made together. Load the tokenizer saved with the model."
            )
    expected_fingerprint = config.get(FINGERPRINT_KEY)
    if expected_fingerprint and vocabulary is not None:
        found = vocabulary_fingerprint(vocabulary())
        if found != expected_fingerprint:
            raise ValueError(
                f"{source} has the model's vocabulary size but not its vocabulary (fingerprint {found}, the config's "
                f"{FINGERPRINT_KEY} is {expected_fingerprint}): words would get other ids than the model learnt. "
                "Load the tokenizer saved with the model."
            )


def check_loading_info(source, loading_info: dict) -> None:
    """Raise `OSError` when the weights did not fit the model: a missing weight would silently stay random."""
    problems = {
        name: sorted(map(str, loading_info.get(name) or []))
        for name in ("missing_keys", "unexpected_keys", "mismatched_keys")
    }
    problems = {name: keys for name, keys in problems.items() if keys}
    if problems:
        said = "; ".join(
            f"{name.replace('_', ' ')}: {', '.join(keys[:8])}" + (" ..." if len(keys) > 8 else "")
            for name, keys in problems.items()
        )
        raise OSError(
            f"The weights in {source} do not fit the model its config describes ({said}). A missing weight would be "
            "left at random. Save the model again with `save_pretrained`, or download the whole folder again."
        )


__all__ = [
    "FINGERPRINT_KEY",
    "check_loading_info",
    "check_model_folder",
    "check_tokenizer",
    "check_tokenizer_file",
    "vocabulary_fingerprint",
]
