import json

import pytest

from modeling_twrvae.data.dialogue_corpora import dialogue_pairs, load_dialogues, read_dailydialog, read_switchboard

from helpers import DATA_DIR


def first_lines(relative_path, count):
    with (DATA_DIR / relative_path).open(encoding="utf-8") as handle:
        return [next(handle) for _ in range(count)]


def test_dailydialog_reader_on_real_lines(tmp_path):
    lines = first_lines("dailydialog/valid.utts.txt", 2)
    path = tmp_path / "two.utts.txt"
    path.write_text("".join(lines))
    dialogues = read_dailydialog(path)
    assert len(dialogues) == 2
    first = dialogues[0]
    assert first["turns"][:2] == [
        "Good morning , sir . Is there a bank near here ?",
        "There is one . 5 blocks away from here ?",
    ]
    assert len(first["turns"]) == lines[0].count("__eou__") == 7
    assert first["speakers"] == ["A", "B", "A", "B", "A", "B", "A"]

    pairs = dialogue_pairs(dialogues, context_window=10)
    assert len(pairs) == 6 + (len(dialogues[1]["turns"]) - 1)  # every turn but the first is a response
    shortest = pairs[0]  # a context shorter than the window: only the first turn
    assert shortest["context"] == [first["turns"][0]] and shortest["response"] == first["turns"][1]
    assert shortest["context_speakers"] == [0]  # A speaks, B responds
    last = pairs[5]
    assert last["context"] == first["turns"][:6] and last["response"] == first["turns"][6]
    assert last["context_speakers"] == [1, 0, 1, 0, 1, 0]  # A responds: A's own turns are 1


def test_dailydialog_context_window_keeps_the_last_turns():
    dialogues = read_dailydialog(DATA_DIR / "dailydialog" / "valid.utts.txt")
    assert len(dialogues) == 1000
    long = next(row for row in dialogues if len(row["turns"]) > 12)
    pairs = dialogue_pairs(dialogues.select([long["dialogue_id"]]), context_window=10)
    row = pairs[11]  # the response at turn 12
    assert row["turn"] == 12 and len(row["context"]) == 10
    assert row["context"] == long["turns"][2:12] and row["response"] == long["turns"][12]


def test_switchboard_reader_on_real_lines(tmp_path):
    line = first_lines("switchboard/valid.jsonl", 1)[0]
    path = tmp_path / "one.jsonl"
    path.write_text(line)
    utterances = json.loads(line)["utts"]
    dialogues = read_switchboard(path)
    assert len(dialogues) == 1
    row = dialogues[0]
    assert row["turns"][:3] == [
        "favorite type of music or musician or any",
        "i don't really have a favorite type i like a lot of different types of music",
        "do you",
    ]
    assert row["speakers"] == [u[0] for u in utterances if u[1].strip()]
    pairs = dialogue_pairs(dialogues, context_window=10)
    assert len(pairs) == len(row["turns"]) - 1
    assert pairs[1]["context"] == row["turns"][:2] and pairs[1]["response"] == "do you"
    assert pairs[1]["context_speakers"] == [1, 0]  # A responds; A spoke first
    assert all(len(pair["context"]) <= 10 for pair in pairs)


def test_named_corpus_and_errors(tmp_path):
    loaded = load_dialogues({"eval": "test"}, dataset="switchboard", data_dir=str(DATA_DIR))
    assert len(loaded["eval"]) == 62
    with pytest.raises(FileNotFoundError, match="train.utts.txt not found"):
        load_dialogues({"train": "train"}, dataset="dailydialog", data_dir=str(DATA_DIR))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"utts": 3}\n')
    with pytest.raises(ValueError, match="line 1: not a Switchboard conversation"):
        read_switchboard(bad)
