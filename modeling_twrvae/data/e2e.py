"""E2E NLG with its meaning representations: the texts beside their MRs, and delexicalised names.

E2E's CSVs (`mr`, `ref`) give every text the meaning representation it was written from. The package reads them for
two things: `metrics/e2e_facts.py` checks a reconstruction against its input's facts, and `delexicalize` replaces
the restaurant's name and its landmark (`name[...]`, `near[...]`) with the placeholders `xname` and `xnear`, as E2E
systems commonly do (Dušek et al., 2020, "Evaluating the state-of-the-art of End-to-End Natural Language
Generation"). Most of these names are rarer than the tokenizer's minimum frequency and would otherwise all read as
`<unk>`, costing the model words it cannot learn; the placeholders are single words that every text has.
"""

from __future__ import annotations

import re
from pathlib import Path

from datasets import Dataset, concatenate_datasets, load_dataset

from .corpora import CORPORA, ENCODING, check_regular_file, default_data_dir

MR = "mr"
NAME_PLACEHOLDER = "xname"
NEAR_PLACEHOLDER = "xnear"
DELEXICALIZED = {"name": NAME_PLACEHOLDER, "near": NEAR_PLACEHOLDER}


def e2e_file(split: str, data_dir: str | None = None) -> Path:
    """The CSV of an E2E split under the data folder, `FileNotFoundError` naming it when it is not there."""
    corpus = CORPORA["e2e"]
    if split not in corpus.files:
        raise ValueError(f"E2E has no split {split!r}; choose one of {list(corpus.files)}.")
    data_dir = data_dir or default_data_dir()
    if not data_dir:
        raise FileNotFoundError(
            "E2E's meaning representations are read from its CSV files: pass `--data_dir` (the folder that holds "
            "e2e/), or set TWRVAE_DATA_DIR."
        )
    path = Path(data_dir) / corpus.folder / corpus.files[split]
    check_regular_file(path, f"E2E's {split} split")
    return path


_SPLIT_PART = re.compile(r"\s*(\w+)\s*(?:\[\s*(\d*)\s*:\s*(\d*)\s*\])?\s*")


def load_e2e(split: str, data_dir: str | None = None, delexicalized: bool = False) -> Dataset:
    """E2E's `split` as a `Dataset` with `text` and `mr`, in file order, blank texts dropped (as `load_corpus`
    drops them, so that row i here is row i there); `delexicalized` replaces names as `delexicalize` does.

    `split` may join splits and slice them as `datasets` writes it, e.g. `"validation+test[1012:]"` (rows 1012 to
    the end of the test split after the development split): the main job trains on that, so that the first 1,000
    test texts, which it is evaluated on, stay unseen."""
    parts = split.split("+")
    if len(parts) > 1 or "[" in split:
        pieces = []
        for part in parts:
            match = _SPLIT_PART.fullmatch(part)
            if match is None:
                raise ValueError(
                    f"E2E split {split!r}: {part!r} is not a split name with an optional slice, e.g. 'test[1012:]'."
                )
            name, start, end = match.groups()
            piece = load_e2e(name, data_dir, delexicalized)
            if start or end:
                piece = piece.select(
                    range(*slice(int(start) if start else None, int(end) if end else None).indices(len(piece)))
                )
            pieces.append(piece)
        return concatenate_datasets(pieces)
    path = e2e_file(split, data_dir)
    data = load_dataset("csv", data_files={"data": str(path)}, split="data", encoding=ENCODING)
    missing = {MR, "ref"} - set(data.column_names)
    if missing:
        raise ValueError(f"{path} has no column(s) {sorted(missing)} (its columns: {data.column_names}).")
    data = data.filter(lambda row: isinstance(row["ref"], str) and bool(row["ref"].strip()))
    data = data.map(lambda row: {"text": row["ref"].strip(), MR: row[MR] or ""}, remove_columns=data.column_names)
    if delexicalized:
        data = data.map(lambda row: {"text": delexicalize(row["text"], row[MR])})
    return data


def was_delexicalized(model_dir: str | Path) -> bool:
    """Whether the model in `model_dir` was trained on delexicalised E2E (`training_config.yaml` records
    `delexicalize: true`): its inputs must then be delexicalised too, and its outputs hold the placeholders."""
    import yaml

    path = Path(model_dir) / "training_config.yaml"
    if not path.is_file():
        return False
    settings = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return bool(settings.get("delexicalize"))


def delexicalize(text: str, mr: str) -> str:
    """`text` with its MR's `name[...]` and `near[...]` values replaced by `xname` and `xnear` (whole words, any
    case; a leading "The" of a name such as "The Eagle" may be left out by the text and is matched either way)."""
    from ..metrics.e2e_facts import parse_mr

    items = parse_mr(mr)
    # longest first, so that a name inside a landmark ("The Rice Boat" in "near The Rice Boat Hotel") goes last
    for key, value in sorted(((k, v) for k, v in items.items() if k in DELEXICALIZED), key=lambda kv: -len(kv[1])):
        value = value.strip()
        if not value:
            continue
        core = re.sub(r"^the\s+", "", value, flags=re.IGNORECASE)
        pattern = rf"(?<!\w)(?:the\s+)?{re.escape(core)}(?!\w)"
        text = re.sub(pattern, DELEXICALIZED[key], text, flags=re.IGNORECASE)
    return text


__all__ = [
    "DELEXICALIZED",
    "MR",
    "NAME_PLACEHOLDER",
    "NEAR_PLACEHOLDER",
    "delexicalize",
    "e2e_file",
    "load_e2e",
    "was_delexicalized",
]
