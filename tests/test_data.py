import json

import pytest

from modeling_twrvae.data.corpora import load_corpus, load_text_files
from modeling_twrvae.data.length_grouping import LengthGroupedBatchSampler

from helpers import DATA_DIR


def test_named_corpus_resolves_to_files_under_the_data_dir():
    data = load_corpus({"train": "validation", "validation": "test"}, dataset="ptb", data_dir=str(DATA_DIR))
    assert len(data["train"]) == 3370 and len(data["validation"]) == 3761
    assert data["train"].column_names == ["text"]
    assert data["train"][0]["text"].startswith("consumers may want")


def test_named_corpus_uses_its_text_column_and_the_environment_variable(monkeypatch):
    monkeypatch.setenv("TWRVAE_DATA_DIR", str(DATA_DIR))
    data = load_corpus({"test": "test"}, dataset="e2e")
    assert len(data["test"]) == 4693 and data["test"][0]["text"].startswith("A coffee shop in the city centre")


def test_missing_named_corpus_names_both_places_and_the_fix(tmp_path, monkeypatch):
    import modeling_twrvae.data.corpora as corpora

    def no_hub(*args, **kwargs):
        raise AssertionError("the Hub was asked although a data folder was given")

    monkeypatch.setattr(corpora, "_load_hub", no_hub)
    with pytest.raises(FileNotFoundError, match=r"yahoo\.train\.txt not found in .*yahoo/ \(it holds yahoo\.valid"):
        load_corpus({"train": "train"}, dataset="yahoo", data_dir=str(DATA_DIR))
    # a given data folder without the file: an error at once, not after the Hub's retries
    with pytest.raises(
        FileNotFoundError, match=r"trainset\.csv not found .*leave out the data folder.*'tuetschek/e2e_nlg'"
    ):
        load_corpus({"train": "train"}, dataset="e2e", data_dir=str(tmp_path))
    monkeypatch.undo()
    monkeypatch.delenv("TWRVAE_DATA_DIR", raising=False)
    with pytest.raises(
        FileNotFoundError,
        match=r"not found: no data folder is given \(neither --data_dir nor \$TWRVAE_DATA_DIR is set\).*"
        r"'tuetschek/e2e_nlg' could not be loaded",
    ):
        load_corpus({"train": "train"}, dataset="e2e")
    with pytest.raises(ValueError, match="Unknown corpus 'wiki'"):
        load_corpus({"train": "train"}, dataset="wiki")
    with pytest.raises(ValueError, match="No data for the"):
        load_corpus({"train": "train"})


def test_local_text_csv_and_jsonl_files(tmp_path):
    (tmp_path / "a.txt").write_text("first line\n\n  \nsecond line\n")
    (tmp_path / "b.csv").write_text('mr,ref\nx,"Hello, world."\ny,Another one\n')
    (tmp_path / "c.jsonl").write_text(json.dumps({"sentence": "from json"}) + "\n")
    data = load_text_files({"train": tmp_path / "a.txt"})
    assert data["train"]["text"] == ["first line", "second line"]
    assert load_text_files({"v": tmp_path / "b.csv"}, text_column="ref")["v"]["text"] == [
        "Hello, world.",
        "Another one",
    ]
    assert load_text_files({"v": tmp_path / "c.jsonl"}, text_column="sentence")["v"]["text"] == ["from json"]
    with pytest.raises(ValueError, match=r"has no column 'text' \(its columns: \['mr', 'ref'\]\); pass `--text_column"):
        load_text_files({"v": tmp_path / "b.csv"})


def test_empty_missing_and_blank_files_are_clear_errors(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "blank.txt").write_text("\n   \n\n")
    with pytest.raises(ValueError, match=r"empty\.txt is empty \(given for the train split\)"):
        load_text_files({"train": tmp_path / "empty.txt"})
    with pytest.raises(ValueError, match=r"blank\.txt holds no text"):
        load_text_files({"train": tmp_path / "blank.txt"})
    with pytest.raises(FileNotFoundError, match=r"nope\.txt does not exist"):
        load_text_files({"train": tmp_path / "nope.txt"})


def test_length_grouped_batches_cover_every_index_once_with_little_padding():
    import random

    rng = random.Random(0)
    lengths = [rng.randint(3, 60) for _ in range(1000)]
    sampler = LengthGroupedBatchSampler(lengths, batch_size=32, seed=1, pool_batches=4)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    assert sorted(i for batch in batches for i in batch) == list(range(1000))
    assert all(len(batch) <= 32 for batch in batches)

    def padding(batch_list):
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batch_list)

    order = list(range(1000))
    rng.shuffle(order)
    random_batches = [order[i : i + 32] for i in range(0, 1000, 32)]
    assert padding(batches) < 0.35 * padding(random_batches)


def test_length_grouped_order_depends_only_on_seed_and_epoch():
    lengths = list(range(3, 203))
    a, b = LengthGroupedBatchSampler(lengths, 8, seed=5), LengthGroupedBatchSampler(lengths, 8, seed=5)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    b.set_epoch(1)
    assert list(a) == list(b)
    ordered = list(LengthGroupedBatchSampler(lengths, 8, shuffle=False))
    assert ordered[0] == sorted(range(200), key=lambda i: -lengths[i])[:8]
    assert len(LengthGroupedBatchSampler(lengths, 8, drop_last=True)) == 25
    with pytest.raises(ValueError, match="empty dataset"):
        LengthGroupedBatchSampler([], 8)
