"""The papers' corpora by name, and text loading through `datasets` with errors that say how to provide the data.

A corpus known by name (`ptb`, `yahoo`, `yelp`, `e2e`) resolves to its files under a data folder (the `--data_dir`
argument, else the `TWRVAE_DATA_DIR` environment variable), laid out as in `../shared/data`; where a split's file is
not there, to a Hub dataset if the corpus has one. Any other text comes from local files (`.txt`: one sentence or
document a line; `.csv`/`.tsv` and `.json`/`.jsonl`: the `text_column`) or from a Hub dataset by name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset, DatasetDict, load_dataset

DATA_DIR_ENV = "TWRVAE_DATA_DIR"
TEXT = "text"


@dataclass(frozen=True)
class Corpus:
    """Where a corpus lives locally and on the Hub, and how the papers tokenise it."""

    folder: str
    files: dict[str, str]
    description: str
    license: str
    text_column: str | None = None
    hub: tuple[str, str | None, str] | None = None  # (dataset name, config name, text column)
    tokenizer: dict = field(default_factory=dict)


CORPORA: dict[str, Corpus] = {
    "ptb": Corpus(
        folder="ptb",
        files={"train": "ptb.train.txt", "validation": "ptb.valid.txt", "test": "ptb.test.txt"},
        description="Penn Treebank, Mikolov's language-modelling version (Bowman et al. 2016; HR-VAE; TWR-VAE)",
        license="LDC User Agreement for Non-Members (research use)",
        hub=("ptb_text_only", None, "sentence"),
        tokenizer={"vocab_size": 10000},
    ),
    "yahoo": Corpus(
        folder="yahoo",
        files={"train": "yahoo.train.txt", "validation": "yahoo.valid.txt", "test": "yahoo.test.txt"},
        description="Yahoo Answers as prepared by Yang et al. 2017 / He et al. 2019 (TWR-VAE)",
        license="Yahoo! Answers Comprehensive Questions and Answers (research use)",
        tokenizer={"vocab_size": 20000},
    ),
    "yelp": Corpus(
        folder="yelp",
        files={"train": "yelp.train.txt", "validation": "yelp.valid.txt", "test": "yelp.test.txt"},
        description="Yelp 2015 reviews as prepared by Yang et al. 2017 (TWR-VAE)",
        license="Yelp Dataset License (research use)",
        tokenizer={"vocab_size": 20000},
    ),
    "e2e": Corpus(
        folder="e2e",
        files={"train": "trainset.csv", "validation": "devset.csv", "test": "testset_w_refs.csv"},
        description="E2E NLG challenge restaurant descriptions (HR-VAE), the `ref` texts",
        license="CC BY-SA 4.0",
        text_column="ref",
        hub=("e2e_nlg", None, "human_reference"),
        tokenizer={"min_frequency": 4, "pre_tokenization": "punctuation"},
    ),
}


def default_data_dir() -> str | None:
    return os.environ.get(DATA_DIR_ENV)


def load_text_files(files: dict[str, str | Path], text_column: str | None = None) -> DatasetDict:
    """A `DatasetDict` with one `text` column from local files, one file per split; blank lines are dropped."""
    splits = {}
    for split, path in files.items():
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist (given for the {split} split).")
        if not os.access(path, os.R_OK):
            raise PermissionError(f"{path} is not readable (given for the {split} split).")
        if path.stat().st_size == 0:
            raise ValueError(f"{path} is empty (given for the {split} split): it needs one text a line.")
        splits[split] = _load_file(path, text_column)
    return DatasetDict(splits)


def _load_file(path: Path, text_column: str | None) -> Dataset:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        builder, kwargs = "csv", ({"delimiter": "\t"} if suffix == ".tsv" else {})
    elif suffix in (".json", ".jsonl"):
        builder, kwargs = "json", {}
    else:
        builder, kwargs, text_column = "text", {}, TEXT
    try:
        dataset = load_dataset(builder, data_files={"data": str(path)}, split="data", **kwargs)
    except Exception as error:
        raise ValueError(f"{path} could not be read as {builder} ({error}).") from error
    column = text_column or TEXT
    if column not in dataset.column_names:
        raise ValueError(
            f"{path} has no column {column!r} (its columns: {dataset.column_names}); pass `--text_column NAME`."
        )
    return _clean(dataset, column, str(path))


def _clean(dataset: Dataset, column: str, source: str) -> Dataset:
    dataset = dataset.select_columns([column])
    if column != TEXT:
        dataset = dataset.rename_column(column, TEXT)
    dataset = dataset.filter(lambda row: isinstance(row[TEXT], str) and bool(row[TEXT].strip()))
    if len(dataset) == 0:
        raise ValueError(f"{source} holds no text: every row of column {column!r} is blank.")
    return dataset.map(lambda row: {TEXT: row[TEXT].strip()})


def load_corpus(
    splits: dict[str, str],
    dataset: str | None = None,
    data_dir: str | None = None,
    files: dict[str, str] | None = None,
    dataset_name: str | None = None,
    dataset_config_name: str | None = None,
    text_column: str | None = None,
) -> DatasetDict:
    """Load the requested splits, keyed by the names the caller uses (e.g. `{"train": "train"}`).

    Args:
        splits: caller's name -> the corpus's split name (`train`, `validation` or `test` for the named corpora).
        dataset: a corpus known by name (see `CORPORA`).
        data_dir: where the named corpora's folders are (defaults to `$TWRVAE_DATA_DIR`).
        files: caller's name -> a local file; these take precedence over `dataset`.
        dataset_name, dataset_config_name: a Hub dataset, for corpora not known by name.
        text_column: the column holding the text in CSV, JSON or Hub data.
    """
    files = {key: path for key, path in (files or {}).items() if path}
    wanted = {key: split for key, split in splits.items() if key not in files}
    loaded = load_text_files(files, text_column) if files else DatasetDict()
    if not wanted:
        return loaded
    if dataset is not None:
        corpus = _corpus(dataset)
        data_dir = data_dir or default_data_dir()
        local = {}
        for key, split in wanted.items():
            if split not in corpus.files:
                raise ValueError(f"Corpus {dataset!r} has no split {split!r}; choose one of {list(corpus.files)}.")
            if data_dir and (Path(data_dir) / corpus.folder / corpus.files[split]).is_file():
                local[key] = Path(data_dir) / corpus.folder / corpus.files[split]
        loaded.update(load_text_files(local, text_column or corpus.text_column))
        missing = {key: split for key, split in wanted.items() if key not in local}
        if missing:
            loaded.update(_load_named_from_hub(dataset, corpus, data_dir, missing))
        return loaded
    if dataset_name is not None:
        loaded.update(_load_hub(dataset_name, dataset_config_name, text_column or TEXT, wanted))
        return loaded
    raise ValueError(
        f"No data for the {sorted(wanted)} split(s): pass `--dataset NAME` (one of {sorted(CORPORA)}), local files "
        "(`--train_file`, `--validation_file`), or a Hub dataset (`--dataset_name`)."
    )


def _corpus(name: str) -> Corpus:
    if name not in CORPORA:
        raise ValueError(
            f"Unknown corpus {name!r}; known by name: {sorted(CORPORA)}. For other text pass local files or a Hub "
            "dataset (`--dataset_name`)."
        )
    return CORPORA[name]


def _load_named_from_hub(name: str, corpus: Corpus, data_dir: str | None, splits: dict[str, str]) -> DatasetDict:
    where = (
        f"{Path(data_dir) / corpus.folder}/" if data_dir else f"a data folder (`--data_dir` or ${DATA_DIR_ENV} unset)"
    )
    needed = ", ".join(corpus.files[split] for split in splits.values())
    advice = f"Put {needed} in {where}, or pass the files with `--train_file` / `--validation_file`" + (
        f", or get network access to the Hub dataset {corpus.hub[0]!r}." if corpus.hub else "."
    )
    if corpus.hub is None:
        raise FileNotFoundError(f"Corpus {name!r}: {needed} not found in {where}, and it has no Hub twin. {advice}")
    hub_name, hub_config, hub_column = corpus.hub
    try:
        return _load_hub(hub_name, hub_config, hub_column, splits)
    except Exception as error:
        raise FileNotFoundError(
            f"Corpus {name!r}: {needed} not found in {where}, and the Hub dataset {hub_name!r} could not be loaded "
            f"({type(error).__name__}: {error}). {advice}"
        ) from error


def _load_hub(name: str, config: str | None, column: str, splits: dict[str, str]) -> DatasetDict:
    loaded = DatasetDict()
    for key, split in splits.items():
        dataset = load_dataset(name, config, split=split)
        if column not in dataset.column_names:
            raise ValueError(f"Hub dataset {name!r} has no column {column!r} (columns: {dataset.column_names}).")
        loaded[key] = _clean(dataset, column, f"Hub dataset {name!r} ({split})")
    return loaded


__all__ = ["CORPORA", "Corpus", "DATA_DIR_ENV", "default_data_dir", "load_corpus", "load_text_files"]
