"""The papers' corpora by name, and text loading through `datasets` with errors that say how to provide the data.

A corpus known by name (`ptb`, `yahoo`, `yelp`, `e2e`) resolves to its files under a data folder (the `--data_dir`
argument, else the `TWRVAE_DATA_DIR` environment variable), laid out as in `../shared/data`; where a split's file is
not there, to a Hub dataset if the corpus has one. Any other text comes from local files (`.txt`: one sentence or
document a line; `.csv`/`.tsv` and `.json`/`.jsonl`: the `text_column`) or from a Hub dataset by name. Local files
are UTF-8, a byte-order mark at the start ignored (`utf-8-sig`); a JSON row without the text, or with a value that is
not a string, is an error that names its line.
"""

from __future__ import annotations

import codecs
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset, DatasetDict, load_dataset

DATA_DIR_ENV = "TWRVAE_DATA_DIR"
TEXT = "text"
# UTF-8 with an optional byte-order mark (Windows editors write one), which must not become part of the first word
ENCODING = "utf-8-sig"


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
    # splits cut from the files by the package (split, data_dir) -> Dataset, instead of one file per split
    loader: Callable[[str, str | None], Dataset] | None = None


CORPORA: dict[str, Corpus] = {
    "ptb": Corpus(
        folder="ptb",
        files={"train": "ptb.train.txt", "validation": "ptb.valid.txt", "test": "ptb.test.txt"},
        description="Penn Treebank, Mikolov's language-modelling version (Bowman et al. 2016; HR-VAE; TWR-VAE)",
        license="LDC User Agreement for Non-Members (research use)",
        hub=("ptb-text-only/ptb_text_only", None, "sentence"),
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
    "yelp-sentiment": Corpus(
        folder="yelp",
        files={"train": "valid0/1.txt, test0/1.txt", "validation": "valid0/1.txt", "test": "test0/1.txt"},
        description="Yelp review sentences labelled by sentiment (Shen et al. 2017), the split of ARAE and iVAE",
        license="Yelp Dataset Terms of Use (academic, non-commercial)",
        tokenizer={"vocab_size": 10000},  # the files hold about 9.4k words: all of them
        loader=lambda split, data_dir: _yelp_loader()(split, data_dir),
    ),
    "e2e": Corpus(
        folder="e2e",
        files={"train": "trainset.csv", "validation": "devset.csv", "test": "testset_w_refs.csv"},
        description="E2E NLG challenge restaurant descriptions (HR-VAE), the `ref` texts",
        license="CC BY-SA 4.0",
        text_column="ref",
        hub=("tuetschek/e2e_nlg", None, "human_reference"),
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
        if path.is_dir():
            raise IsADirectoryError(f"{path} is a folder (given for the {split} split): pass a file, one text a line.")
        check_regular_file(path, f"given for the {split} split")
        if not os.access(path, os.R_OK):
            raise PermissionError(f"{path} is not readable (given for the {split} split).")
        if path.stat().st_size == 0:
            raise ValueError(f"{path} is empty (given for the {split} split): it needs one text a line.")
        check_utf8_text(path)
        splits[split] = _load_file(path, text_column)
    return DatasetDict(splits)


def check_regular_file(path: str | Path, given_for: str) -> None:
    """`FileNotFoundError` for a missing path; `ValueError` for one that is not a regular file (a FIFO, a device such
    as /dev/zero, a socket), which would block or never end rather than be read as text."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist ({given_for}).")
    if not path.is_file():
        raise ValueError(
            f"{path} is not a regular file (a FIFO, a device or a socket; {given_for}): pass a file, one text a line."
        )


def check_utf8_text(path: str | Path, chunk_size: int = 1 << 22) -> None:
    """`ValueError` naming the line when `path` is not UTF-8 text (another encoding, or a binary file)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(chunk_size)
            if b"\0" in chunk:
                line += chunk.count(b"\n", 0, chunk.index(b"\0"))
                raise ValueError(f"{path}, line {line}, holds a NUL byte: it looks like a binary file, not text.")
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as error:
                line += chunk.count(b"\n", 0, max(error.start, 0))
                raise ValueError(
                    f"{path}, line {line}, is not UTF-8 ({error.reason} at byte {error.object[error.start : error.end]!r}):"
                    " the texts must be UTF-8. Convert the file, e.g. `iconv -f latin1 -t utf-8 FILE > FILE.utf8`."
                ) from error
            if not chunk:
                return
            line += chunk.count(b"\n")


def looks_local(name: str) -> bool:
    """A name meant as a local path (rather than a Hub id): it exists, or is written like a path."""
    path = Path(name)
    return (
        path.exists()
        or name.startswith((".", "/", "~"))
        or name.count("/") > 1
        or (str(path.parent) not in ("", ".") and path.parent.is_dir())  # "outputs/demo" beside an outputs/ folder
    )


def check_local_path(name: str, argument: str, needs_tokenizer: bool = True) -> None:
    """Fail at once on a local folder that is missing, is not a folder, or holds no tokenizer (when
    `needs_tokenizer`), rather than ask the Hub for it or fail later with a misleading message."""
    path = Path(name).expanduser()
    if not looks_local(name):
        return
    if not path.exists():
        raise FileNotFoundError(f"{argument} {name}: no such folder.")
    if not path.is_dir():
        kind = "a file" if path.is_file() else "a FIFO, a device or a socket"
        raise NotADirectoryError(
            f"{argument} {name} is {kind}, not a model folder: pass the folder saved with `save_pretrained` "
            "(it holds config.json, the weights and tokenizer.json), or a Hub repository id."
        )
    if needs_tokenizer and not (path / "tokenizer.json").is_file():
        other = (
            "or leave the argument out to train one on the training split"
            if argument == "--tokenizer_name"
            else "or pass `--tokenizer_name FOLDER` naming a folder that holds one"
        )
        raise FileNotFoundError(
            f"{argument} {name}: the folder holds no tokenizer (no tokenizer.json). Save the model's tokenizer there "
            f"with `tokenizer.save_pretrained(folder)` (training/train.py does), {other}."
        )


def _load_file(path: Path, text_column: str | None) -> Dataset:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        builder, kwargs = "csv", {"encoding": ENCODING, **({"delimiter": "\t"} if suffix == ".tsv" else {})}
    elif suffix in (".json", ".jsonl"):
        return _clean(_read_json_texts(path, text_column or TEXT), TEXT, str(path))
    else:
        builder, kwargs, text_column = "text", {"encoding": ENCODING}, TEXT
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


def _read_json_texts(path: Path, column: str) -> Dataset:
    """The `column` of a JSON-lines file (one object a line; blank lines skipped) or of a JSON array of objects.

    A row that is not an object, lacks the column, or holds something other than a string there is an error naming
    the line (the item, in an array): dropping it would change the data without a word."""
    with path.open(encoding=ENCODING) as handle:
        text = handle.read()
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON ({error}).") from error
        rows = [(f"item {number}", item) for number, item in enumerate(items, start=1)]
    else:
        rows = []
        for number, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                rows.append((f"line {number}", json.loads(line)))
            except json.JSONDecodeError as error:
                raise ValueError(
                    f"{path}, line {number}, is not valid JSON ({error.msg}): a .json or .jsonl file holds one JSON "
                    "object a line (JSON lines), or one JSON array of objects."
                ) from error
    if not rows:
        raise ValueError(f"{path} holds no text: it has no JSON row.")
    if not any(isinstance(row, dict) and column in row for _, row in rows):
        first = next((row for _, row in rows if isinstance(row, dict)), {})
        raise ValueError(f"{path} has no column {column!r} (its columns: {sorted(first)}); pass `--text_column NAME`.")
    texts = []
    for where, row in rows:
        if not isinstance(row, dict):
            raise ValueError(f"{path}, {where}: a JSON {_json_type(row)}, not an object with a {column!r} key.")
        if column not in row:
            raise ValueError(
                f"{path}, {where}: no {column!r} key (its keys: {sorted(row)}); every row needs its text there."
            )
        value = row[column]
        if not isinstance(value, str):
            shown = "null" if value is None else f"{json.dumps(value)[:40]} (a JSON {_json_type(value)})"
            raise ValueError(f"{path}, {where}: {column!r} is {shown}, not a string of text.")
        texts.append(value)
    return Dataset.from_dict({TEXT: texts})


def _json_type(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    names = {dict: "object", list: "array", str: "string", int: "number", float: "number"}
    return names.get(type(value), type(value).__name__)


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
        if corpus.loader is not None:
            loaded.update({key: corpus.loader(split, data_dir) for key, split in wanted.items()})
            return loaded
        local = {}
        for key, split in wanted.items():
            if split not in corpus.files:
                raise ValueError(f"Corpus {dataset!r} has no split {split!r}; choose one of {list(corpus.files)}.")
            if data_dir and (Path(data_dir) / corpus.folder / corpus.files[split]).is_file():
                local[key] = Path(data_dir) / corpus.folder / corpus.files[split]
        loaded.update(load_text_files(local, text_column or corpus.text_column))
        missing = {key: split for key, split in wanted.items() if key not in local}
        if missing and data_dir:
            # a data folder was given: its missing file is an error now, not after the Hub's retries
            raise FileNotFoundError(_missing_message(dataset, corpus, data_dir, missing, given_folder=True))
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


def _yelp_loader():
    from .yelp import load_yelp_sentiment  # imports this module

    return load_yelp_sentiment


def _corpus(name: str) -> Corpus:
    if name not in CORPORA:
        raise ValueError(
            f"Unknown corpus {name!r}; known by name: {sorted(CORPORA)}. For other text pass local files or a Hub "
            "dataset (`--dataset_name`)."
        )
    return CORPORA[name]


def _missing_message(name: str, corpus: Corpus, data_dir: str | None, splits: dict, given_folder: bool) -> str:
    needed = ", ".join(corpus.files[split] for split in splits.values())
    present = sorted(p.name for p in (Path(data_dir) / corpus.folder).glob("*")) if data_dir else []
    if data_dir:
        where = f"{Path(data_dir) / corpus.folder}/"
        message = f"Corpus {name!r}: {needed} not found in {where}"
    else:
        where = "a data folder"
        message = f"Corpus {name!r}: {needed} not found: no data folder is given (neither --data_dir nor ${DATA_DIR_ENV} is set)"
    if present:
        message += f" (it holds {', '.join(present)}; choose a split it has with --train_split/--validation_split)"
    message += f". Put {needed} in {where}, or pass files with `--train_file` / `--validation_file`"
    if corpus.hub and given_folder:
        message += f", or leave out the data folder to load the Hub dataset {corpus.hub[0]!r} (needs network access)"
    return message + "."


def _load_named_from_hub(name: str, corpus: Corpus, data_dir: str | None, splits: dict[str, str]) -> DatasetDict:
    if corpus.hub is None:
        raise FileNotFoundError(_missing_message(name, corpus, data_dir, splits, False) + " It has no Hub twin.")
    hub_name, hub_config, hub_column = corpus.hub
    try:
        return _load_hub(hub_name, hub_config, hub_column, splits)
    except Exception as error:
        raise FileNotFoundError(
            _missing_message(name, corpus, data_dir, splits, False)
            + f" The Hub dataset {hub_name!r} could not be loaded either ({type(error).__name__}: {error})."
        ) from error


def _load_hub(name: str, config: str | None, column: str, splits: dict[str, str]) -> DatasetDict:
    loaded = DatasetDict()
    for key, split in splits.items():
        dataset = load_dataset(name, config, split=split)
        if column not in dataset.column_names:
            raise ValueError(f"Hub dataset {name!r} has no column {column!r} (columns: {dataset.column_names}).")
        loaded[key] = _clean(dataset, column, f"Hub dataset {name!r} ({split})")
    return loaded


__all__ = [
    "CORPORA",
    "Corpus",
    "DATA_DIR_ENV",
    "check_local_path",
    "check_regular_file",
    "check_utf8_text",
    "default_data_dir",
    "load_corpus",
    "load_text_files",
]
