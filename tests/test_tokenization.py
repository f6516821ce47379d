import re

import pytest
from transformers import AutoTokenizer

from modeling_twrvae import train_tokenizer

from helpers import read_lines


def test_special_tokens_and_wrapping(tokenizer):
    assert tokenizer.convert_tokens_to_ids(["<pad>", "<unk>", "<bos>", "<eos>"]) == [0, 1, 2, 3]
    assert (tokenizer.pad_token_id, tokenizer.unk_token_id) == (0, 1)
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id) == (2, 3)
    ids = tokenizer("The company said")["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids) == ["<bos>", "the", "company", "said", "<eos>"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == "the company said"


def test_unknown_markers_of_the_corpora_map_to_unk(ptb_lines):
    yahoo = read_lines("yahoo/yahoo.valid.txt", 50)
    assert any("_UNK" in line.split() for line in yahoo)
    tokenizer = train_tokenizer(ptb_lines + yahoo, vocab_size=3000)
    vocab = tokenizer.get_vocab()
    assert "_unk" not in vocab and "_UNK" not in vocab
    assert tokenizer.convert_tokens_to_ids("<unk>") == 1 and len(vocab) == len(tokenizer)
    assert sorted(vocab.values()) == list(range(len(vocab)))  # no hole where <unk> was counted as a word
    tokens = tokenizer.convert_ids_to_tokens(tokenizer("_UNK said <unk> zzyzx")["input_ids"])
    assert tokens == ["<bos>", "<unk>", "said", "<unk>", "<unk>", "<eos>"]


def test_vocab_size_and_min_frequency(ptb_lines):
    small = train_tokenizer(ptb_lines, vocab_size=100)
    assert len(small) == 100
    frequent = train_tokenizer(["a a a b b c"], vocab_size=100, min_frequency=2)
    assert set(frequent.get_vocab()) == {"<pad>", "<unk>", "<bos>", "<eos>", "a", "b"}


def test_lowercasing_can_be_turned_off():
    assert "The" in train_tokenizer(["The cat"], lowercase=False).get_vocab()
    assert "The" not in train_tokenizer(["The cat"]).get_vocab()


def test_batch_padding_is_right_sided(tokenizer):
    batch = tokenizer(["a b c d", "a"], padding=True)
    assert batch["attention_mask"][1] == [1, 1, 1, 0, 0, 0]
    assert batch["input_ids"][1][-1] == tokenizer.pad_token_id


def test_saved_tokenizer_loads_with_autotokenizer(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    text = "the market fell N points"
    assert loaded(text)["input_ids"] == tokenizer(text)["input_ids"]
    assert loaded.padding_side == "right" and loaded.pad_token == "<pad>"


@pytest.mark.parametrize("texts", [[], ["", "   ", "\n"]])
def test_empty_corpus_is_a_clear_error(texts):
    with pytest.raises(ValueError, match="empty corpus"):
        train_tokenizer(texts)


def test_vocab_size_too_small_is_a_clear_error():
    with pytest.raises(ValueError, match="larger than the 4 special tokens"):
        train_tokenizer(["a b"], vocab_size=4)


def reference_split(sentence: str) -> list[str]:
    """`Corpus._split` of the TWR-VAE and HR-VAE reference code, as the test's oracle."""
    sentence = re.sub(r"[.]+", ".", sentence.lower())
    sentence = re.sub(r"([.?!,]|'s)", r" \1", sentence)
    return re.split(r"\s+", sentence)


def test_papers_pre_tokenization_splits_as_the_reference_code_on_real_ptb():
    lines = read_lines("ptb/ptb.test.txt", 10_000)
    tokenizer = train_tokenizer(lines, vocab_size=50_000, pre_tokenization="papers")
    backend = tokenizer.backend_tokenizer
    words = [
        [w for w, _ in backend.pre_tokenizer.pre_tokenize_str(backend.normalizer.normalize_str(line))] for line in lines
    ]
    # PTB has no corpus-specific marker other than `<unk>`, which both leave whole
    assert words == [reference_split(line) for line in lines]
    assert sum(map(len, words)) == 80_185  # against 78,669 by white space alone
    assert sum(len(line.split()) for line in lines) == 78_669
    text = "Mr. Smith's U.S. firm... rose, didn't it?"
    cut = [w for w, _ in backend.pre_tokenizer.pre_tokenize_str(backend.normalizer.normalize_str(text))]
    assert cut == reference_split(text)
    assert cut == ["mr", ".", "smith", "'s", "u", ".s", ".", "firm", ".", "rose", ",", "didn't", "it", "?"]

    tokens = tokenizer.convert_ids_to_tokens(tokenizer("Mr. Zzyzx's firm")["input_ids"])
    assert tokens == ["<bos>", "mr", ".", "<unk>", "'s", "firm", "<eos>"]
    whitespace = train_tokenizer(lines[:50]).backend_tokenizer
    assert [w for w, _ in whitespace.pre_tokenizer.pre_tokenize_str("mr. smith's")] == ["mr.", "smith's"]


def test_unknown_pre_tokenization_is_a_clear_error():
    with pytest.raises(
        ValueError, match=r"`pre_tokenization` must be one of \['whitespace', 'punctuation', 'papers'\]"
    ):
        train_tokenizer(["a b"], pre_tokenization="spaces")
