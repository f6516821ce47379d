"""Dialogue corpora through `datasets`: DailyDialog and Switchboard readers, and (context, response) pairs.

- DailyDialog (`*.utts.txt`): one dialogue a line, turns separated by `__eou__`, the two speakers alternating.
- Switchboard (`*.jsonl`, the files of Zhao et al. 2017): one conversation a JSON object, `utts` a list of
  `[speaker, text, [dialogue act, features]]`.

Each dialogue becomes one row (`dialogue_id`, `turns`, `speakers`); `dialogue_pairs` then pairs every turn after the
first with the up to `context_window` turns before it, as the TWR-VAE paper (after Zhao et al.) does. A context
utterance's floor is 1 when its speaker gives the response and 0 otherwise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset, load_dataset

from ..data.corpora import ENCODING, check_regular_file, default_data_dir

EOU = "__eou__"


@dataclass(frozen=True)
class DialogueCorpus:
    folder: str
    files: dict[str, str]
    reader: str
    description: str
    license: str
    tokenizer: dict = field(default_factory=dict)


DIALOGUE_CORPORA: dict[str, DialogueCorpus] = {
    "dailydialog": DialogueCorpus(
        folder="dailydialog",
        files={"train": "train.utts.txt", "validation": "valid.utts.txt", "test": "test.utts.txt"},
        reader="dailydialog",
        description="DailyDialog (Li et al. 2017), as used by the TWR-VAE dialogue experiments",
        license="CC BY-NC-SA 4.0",
        # raw text ("far.Can"): punctuation is split off words
        tokenizer={"vocab_size": 10000, "pre_tokenization": "punctuation"},
    ),
    "switchboard": DialogueCorpus(
        folder="switchboard",
        files={"train": "train.jsonl", "validation": "valid.jsonl", "test": "test.jsonl"},
        reader="switchboard",
        description="Switchboard (SwDA) as prepared by Zhao et al. 2017 (CVAE) and used by TWR-VAE",
        license="LDC Switchboard-1 Release 2 (research use)",
        tokenizer={"vocab_size": 10000},
    ),
}


def _check_file(path: Path) -> None:
    check_regular_file(path, "a dialogue file")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty: it needs one dialogue a line.")


def read_dailydialog(path: str | Path) -> Dataset:
    """DailyDialog `*.utts.txt` as rows of (`dialogue_id`, `turns`, `speakers`); speakers alternate A, B, A, ..."""
    path = Path(path)
    _check_file(path)
    lines = load_dataset("text", data_files={"data": str(path)}, split="data", encoding=ENCODING)

    def split(row, index):
        turns = [turn.strip() for turn in row["text"].split(EOU)]
        turns = [turn for turn in turns if turn]
        return {"dialogue_id": index, "turns": turns, "speakers": ["AB"[i % 2] for i in range(len(turns))]}

    dialogues = lines.map(split, with_indices=True, remove_columns=lines.column_names)
    dialogues = dialogues.filter(lambda row: len(row["turns"]) >= 2)
    if len(dialogues) == 0:
        raise ValueError(f"{path} holds no dialogue of two or more `{EOU}`-separated turns.")
    return dialogues


def read_switchboard(path: str | Path) -> Dataset:
    """Switchboard `*.jsonl` (Zhao et al.'s format) as rows of (`dialogue_id`, `turns`, `speakers`)."""
    path = Path(path)
    _check_file(path)
    rows = []
    with path.open(encoding=ENCODING) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                utterances = json.loads(line)["utts"]
                pairs = [(str(utterance[0]), str(utterance[1]).strip()) for utterance in utterances]
            except (json.JSONDecodeError, KeyError, IndexError, TypeError) as error:
                raise ValueError(
                    f"{path}, line {number}: not a Switchboard conversation (a JSON object whose `utts` is a list of "
                    f"[speaker, text, ...]): {error}"
                ) from error
            pairs = [(speaker, text) for speaker, text in pairs if text]
            if len(pairs) >= 2:
                rows.append(
                    {
                        "dialogue_id": len(rows),
                        "turns": [text for _, text in pairs],
                        "speakers": [speaker for speaker, _ in pairs],
                    }
                )
    if not rows:
        raise ValueError(f"{path} holds no conversation of two or more utterances.")
    return Dataset.from_list(rows)


READERS = {"dailydialog": read_dailydialog, "switchboard": read_switchboard}


def read_dialogues(path: str | Path, reader: str | None = None) -> Dataset:
    """Dialogues from a file: `reader` by name, else by the suffix (`.jsonl`/`.json`: Switchboard, else DailyDialog)."""
    if reader is None:
        reader = "switchboard" if Path(path).suffix.lower() in (".json", ".jsonl") else "dailydialog"
    if reader not in READERS:
        raise ValueError(f"Unknown dialogue reader {reader!r}; choose one of {sorted(READERS)}.")
    return READERS[reader](path)


def dialogue_pairs(dialogues: Dataset, context_window: int = 10) -> Dataset:
    """One row per response (every turn but the first): `context` (the up to `context_window` turns before it,
    oldest first), `context_speakers` (1 where the responder speaks), `response`, `dialogue_id`, `turn`."""
    if context_window < 1:
        raise ValueError(f"`context_window` must be >= 1, got {context_window}.")

    def pairs(batch):
        out = {"context": [], "context_speakers": [], "response": [], "dialogue_id": [], "turn": []}
        for dialogue_id, turns, speakers in zip(batch["dialogue_id"], batch["turns"], batch["speakers"], strict=True):
            for i in range(1, len(turns)):
                start = max(0, i - context_window)
                out["context"].append(turns[start:i])
                out["context_speakers"].append([int(speaker == speakers[i]) for speaker in speakers[start:i]])
                out["response"].append(turns[i])
                out["dialogue_id"].append(dialogue_id)
                out["turn"].append(i)
        return out

    return dialogues.map(pairs, batched=True, remove_columns=dialogues.column_names)


def load_dialogues(
    splits: dict[str, str],
    dataset: str | None = None,
    data_dir: str | None = None,
    files: dict[str, str | None] | None = None,
) -> dict[str, Dataset]:
    """Dialogues (one row each) for the requested splits, keyed by the caller's names, from a corpus known by name
    under `data_dir` (default `$TWRVAE_DATA_DIR`) or from local files (which take precedence)."""
    files = {key: path for key, path in (files or {}).items() if path}
    loaded = {key: read_dialogues(path) for key, path in files.items()}
    wanted = {key: split for key, split in splits.items() if key not in files}
    if not wanted:
        return loaded
    if dataset is None:
        raise ValueError(
            f"No dialogues for the {sorted(wanted)} split(s): pass `--dataset` (one of {sorted(DIALOGUE_CORPORA)}) "
            "with `--data_dir`, or local files (`--train_file`, `--validation_file`)."
        )
    if dataset not in DIALOGUE_CORPORA:
        raise ValueError(f"Unknown dialogue corpus {dataset!r}; known by name: {sorted(DIALOGUE_CORPORA)}.")
    corpus = DIALOGUE_CORPORA[dataset]
    data_dir = data_dir or default_data_dir()
    for key, split in wanted.items():
        if split not in corpus.files:
            raise ValueError(f"Corpus {dataset!r} has no split {split!r}; choose one of {list(corpus.files)}.")
        if not data_dir:
            raise FileNotFoundError(
                f"Corpus {dataset!r}: no data folder given; pass `--data_dir` (the folder holding "
                f"{corpus.folder}/{corpus.files[split]}) or set $TWRVAE_DATA_DIR."
            )
        path = Path(data_dir) / corpus.folder / corpus.files[split]
        if not path.is_file():
            raise FileNotFoundError(
                f"Corpus {dataset!r}: {path} not found. Put {corpus.files[split]} in {Path(data_dir) / corpus.folder}/ "
                "or pass the file with `--train_file` / `--validation_file`."
            )
        loaded[key] = READERS[corpus.reader](path)
    return loaded


__all__ = [
    "DIALOGUE_CORPORA",
    "DialogueCorpus",
    "dialogue_pairs",
    "load_dialogues",
    "read_dailydialog",
    "read_dialogues",
    "read_switchboard",
]
