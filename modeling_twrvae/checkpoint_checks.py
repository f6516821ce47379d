"""Checks that turn a broken checkpoint folder or a mismatched tokenizer into an error that says what to do."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from safetensors import safe_open

WEIGHTS_NAME = "model.safetensors"
WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
TOKENIZER_FILE = "tokenizer.json"
GENERATION_CONFIG_FILE = "generation_config.json"
# generation settings that must be positive integers when set (transformers reads a wrong one without a word)
_POSITIVE_GENERATION_SETTINGS = ("max_length", "max_new_tokens", "num_beams", "num_return_sequences")
_NON_NEGATIVE_GENERATION_SETTINGS = ("min_length", "min_new_tokens")
SPECIAL_TOKENS = {"pad_token_id": "<pad>", "unk_token_id": "<unk>", "bos_token_id": "<bos>", "eos_token_id": "<eos>"}
FINGERPRINT_KEY = "vocab_fingerprint"


def vocabulary_fingerprint(vocabulary: dict[str, int]) -> str:
    """A short hash of the token -> id mapping: equal only when every word has the same id (a reordered or retrained
    vocabulary of the same size differs). Store it as `config.vocab_fingerprint` to have loading check it."""
    tokens = sorted(vocabulary.items(), key=lambda item: item[1])
    text = "\n".join(f"{token_id}\t{token}" for token, token_id in tokens)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def check_model_folder(folder: str | Path, subfolder: str = "", generation_config: bool = True) -> None:
    """Raise `OSError` for missing or unreadable weights or an unreadable `generation_config.json` (unless
    `generation_config=False`), `ValueError` for a tokenizer that does not fit the model or a generation setting of
    the wrong type."""
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
    generation_file = folder / GENERATION_CONFIG_FILE
    if generation_config and generation_file.exists():
        check_generation_config_file(generation_file)
    tokenizer_file = folder / TOKENIZER_FILE
    if tokenizer_file.is_file():
        check_tokenizer_file(tokenizer_file, json.loads(config_file.read_text()))


def check_generation_config_file(path: str | Path) -> None:
    """`OSError` for a `generation_config.json` that cannot be read, `ValueError` for a length setting that is not a
    positive integer. transformers ignores an unreadable file without a word and generates with other settings
    (`max_length` then None: no limit of the folder's own)."""
    path = Path(path)
    advice = "Fix the file, or delete it to generate with the default settings."
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise OSError(f"{path} is not a readable JSON file ({error}). {advice}") from error
    if not isinstance(values, dict):
        raise OSError(f"{path} holds a JSON {type(values).__name__}, not an object of generation settings. {advice}")
    for key in _POSITIVE_GENERATION_SETTINGS + _NON_NEGATIVE_GENERATION_SETTINGS:
        value = values.get(key)
        least = 1 if key in _POSITIVE_GENERATION_SETTINGS else 0
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
            kind = "a positive integer" if least else "an integer >= 0"
            raise ValueError(f"{path}: `{key}` must be {kind}, got {value!r}. {advice}")


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
    if expected is None:
        raise ValueError(
            "The model's config.json has no vocab_size: it is damaged or was not written by save_pretrained. Restore "
            f'it, or add "vocab_size": {vocab_size} (the size of {source}, if it is the tokenizer saved with the model).'
        )
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


def check_loading_info(source, loading_info: dict, ignore_mismatched_sizes: bool = False) -> None:
    """Raise `OSError` when the weights did not fit the model: a missing weight would silently stay random.

    With `ignore_mismatched_sizes=True` (transformers' meaning: weights whose shape differs from the checkpoint's are
    initialised anew, and transformers' load report lists them), mismatched weights are accepted; missing and
    unexpected ones are still refused.
    """
    names = ("missing_keys", "unexpected_keys") + (() if ignore_mismatched_sizes else ("mismatched_keys",))
    problems = {name: sorted(map(_key_name, loading_info.get(name) or [])) for name in names}
    problems = {name: keys for name, keys in problems.items() if keys}
    if not problems:
        return
    said = "; ".join(
        f"{name.replace('_', ' ')}: {', '.join(keys[:8])}" + (" ..." if len(keys) > 8 else "")
        for name, keys in problems.items()
    )
    if set(problems) == {"mismatched_keys"}:
        raise OSError(
            f"The weights in {source} have other shapes than the model its config (with any keyword overrides) "
            f"describes ({said}). Drop the overrides that change sizes, or pass `ignore_mismatched_sizes=True` to "
            "initialise those weights anew (they are then untrained)."
        )
    raise OSError(
        f"The weights in {source} do not fit the model its config describes ({said}). A missing weight would be "
        "left at random. Save the model again with `save_pretrained`, or download the whole folder again."
    )


def _key_name(key) -> str:
    """A weight's name with its shapes: mismatched keys come as (name, checkpoint shape, model shape)."""
    if isinstance(key, tuple) and len(key) == 3:
        name, checkpoint_shape, model_shape = key
        return f"{name} (checkpoint {tuple(checkpoint_shape)}, model {tuple(model_shape)})"
    return str(key)


__all__ = [
    "FINGERPRINT_KEY",
    "check_loading_info",
    "check_generation_config_file",
    "check_model_folder",
    "check_tokenizer",
    "check_tokenizer_file",
    "vocabulary_fingerprint",
]
