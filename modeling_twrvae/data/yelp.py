"""Yelp review sentences with sentiment labels (`--dataset yelp-sentiment`), in fixed training, validation and test
splits.

The corpus is the one of Shen et al. (2017, "Style transfer from non-parallel text by cross-alignment") in the split
that ARAE (Zhao et al., 2018) and the Implicit-LVM code (`transfer_yelp/data`) use: tokenised, lower-cased sentences
of at most 15 tokens, one a line, in four files whose digit is the label (0 negative, 1 positive): `valid0.txt`,
`valid1.txt`, `test0.txt`, `test1.txt` (the test files without their last 5,000 sentences of each label). Their
training files are not part of that release, so the package cuts the four files into its own splits, the same every
time (no shuffling, no seed):

- `test`: the last 1,000 sentences of `test0.txt` and of `test1.txt` (2,000 sentences), alternating negative and
  positive, so that its first N sentences (`evaluate.py --max_samples N`) are balanced too;
- `validation`: the last 500 sentences of `valid0.txt` and of `valid1.txt` (1,000 sentences), for model selection;
- `train`: every other sentence of the four files, less any sentence that also occurs in `validation` or `test`.

Short sentences recur in this corpus ("love this place !" is in every file), across splits too. Training drops
every sentence whose exact text is in the validation or test split (about 6,200 of 177,000), so that no evaluated
sentence was seen in training; the evaluation splits keep their repeats, as the corpus has them. A few sentences
carry both labels (23 texts); each row keeps its file's label.

Rows hold `text` and `label` (0 negative, 1 positive); `LABEL_NAMES` names them.
"""

from __future__ import annotations

from pathlib import Path

from datasets import ClassLabel, Dataset, Features, Value, concatenate_datasets

from .corpora import ENCODING, check_regular_file, default_data_dir

NAME = "yelp-sentiment"
FOLDER = "yelp"
LABEL_NAMES = ("negative", "positive")
FILES = {"validation": ("valid0.txt", "valid1.txt"), "test": ("test0.txt", "test1.txt")}
# rows taken from the end of each label's file for the held-out splits
HELD_OUT = {"validation": 500, "test": 1000}
SPLITS = ("train", "validation", "test")
FEATURES = Features({"text": Value("string"), "label": ClassLabel(names=list(LABEL_NAMES))})


def yelp_folder(data_dir: str | None = None) -> Path:
    """The folder that holds the four Yelp files, `FileNotFoundError` naming what is missing."""
    data_dir = data_dir or default_data_dir()
    if not data_dir:
        raise FileNotFoundError(
            f"Corpus {NAME!r} is read from its files: pass `--data_dir` (the folder that holds {FOLDER}/), or set "
            "TWRVAE_DATA_DIR."
        )
    folder = Path(data_dir) / FOLDER
    for names in FILES.values():
        for name in names:
            check_regular_file(folder / name, f"corpus {NAME!r} needs valid0/1.txt and test0/1.txt in {folder}")
    return folder


def _read_lines(path: Path) -> list[str]:
    with path.open(encoding=ENCODING) as handle:
        return [line.strip() for line in handle if line.strip()]


def _split_rows(folder: Path) -> dict[str, tuple[list[str], list[int]]]:
    held_out: dict[str, tuple[list[str], list[int]]] = {"validation": ([], []), "test": ([], [])}
    rest: tuple[list[str], list[int]] = ([], [])
    for source in ("validation", "test"):
        keep = HELD_OUT[source]
        for label, name in enumerate(FILES[source]):
            lines = _read_lines(folder / name)
            if len(lines) <= keep:
                raise ValueError(
                    f"{folder / name} has {len(lines)} sentences; corpus {NAME!r} holds out its last {keep}, so it "
                    "needs more. Use the corpus's own files, or pass your files with --train_file/--validation_file."
                )
            held_out[source][0].extend(lines[-keep:])
            held_out[source][1].extend([label] * keep)
            rest[0].extend(lines[:-keep])
            rest[1].extend([label] * (len(lines) - keep))
    texts, labels = held_out["test"]
    order = [i for pair in zip(range(len(texts) // 2), range(len(texts) // 2, len(texts)), strict=True) for i in pair]
    held_out["test"] = ([texts[i] for i in order], [labels[i] for i in order])
    evaluated = set(held_out["validation"][0]) | set(held_out["test"][0])
    kept = [i for i, text in enumerate(rest[0]) if text not in evaluated]
    train = ([rest[0][i] for i in kept], [rest[1][i] for i in kept])
    return {"train": train, **held_out}


def load_yelp_sentiment(split: str, data_dir: str | None = None) -> Dataset:
    """A split of the Yelp sentiment sentences (`train`, `validation`, `test`, or several joined by `+`) as a
    `Dataset` with `text` and `label`, in a fixed order."""
    parts = [part.strip() for part in split.split("+")]
    unknown = [part for part in parts if part not in SPLITS]
    if unknown:
        raise ValueError(f"Corpus {NAME!r} has no split {unknown[0]!r}; choose one of {list(SPLITS)}.")
    rows = _split_rows(yelp_folder(data_dir))
    pieces = [Dataset.from_dict({"text": rows[p][0], "label": rows[p][1]}, features=FEATURES) for p in parts]
    return pieces[0] if len(pieces) == 1 else concatenate_datasets(pieces)


__all__ = ["FEATURES", "LABEL_NAMES", "NAME", "SPLITS", "load_yelp_sentiment", "yelp_folder"]
