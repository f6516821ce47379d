"""The Yelp sentiment corpus and what the package measures on it: fixed splits, the judge, the fluency language
model, and the named attribute vector that travels with a model (its file, the remote-code load, the pipeline and
the command line)."""

import json
import random

import pytest
import torch

from modeling_twrvae.commands.cli import main as cli_main
from modeling_twrvae.data.corpora import load_corpus
from modeling_twrvae.data.yelp import load_yelp_sentiment
from modeling_twrvae.metrics.fluency import KneserNeyTrigram, copy_rate
from modeling_twrvae.metrics.sentiment import SentimentJudge, operating_point, transfer_curve

from helpers import DATA_DIR, informative, run_without_package, tiny_model


@pytest.fixture(scope="module")
def yelp():
    return {split: load_yelp_sentiment(split, str(DATA_DIR)) for split in ("train", "validation", "test")}


def test_the_splits_are_fixed_balanced_and_training_never_holds_an_evaluated_sentence(yelp):
    assert (len(yelp["validation"]), len(yelp["test"])) == (1000, 2000)
    assert yelp["test"]["label"][:6] == [0, 1, 0, 1, 0, 1]  # any prefix is balanced
    assert sum(yelp["validation"]["label"]) == 500 and sum(yelp["test"]["label"]) == 1000
    evaluated = set(yelp["validation"]["text"]) | set(yelp["test"]["text"])
    assert not evaluated & set(yelp["train"]["text"])
    files = ("valid0", "valid1", "test0", "test1")
    lines = sum(len((DATA_DIR / "yelp" / f"{name}.txt").read_text().splitlines()) for name in files)
    assert 160_000 < len(yelp["train"]) < lines - 3000  # what the repeats of evaluated sentences removed
    again = load_yelp_sentiment("test", str(DATA_DIR))
    assert again["text"] == yelp["test"]["text"]
    # the test split is the last 1,000 sentences of each test file
    last_negative = (DATA_DIR / "yelp" / "test0.txt").read_text().splitlines()[-1000:]
    assert yelp["test"]["text"][0::2] == [line.strip() for line in last_negative]


def test_the_corpus_is_known_by_name_to_the_loaders(yelp):
    loaded = load_corpus({"eval": "test"}, dataset="yelp-sentiment", data_dir=str(DATA_DIR))["eval"]
    assert loaded.column_names == ["text", "label"] and loaded["text"] == yelp["test"]["text"]
    with pytest.raises(ValueError, match=r"no split 'dev'.*\['train', 'validation', 'test'\]"):
        load_yelp_sentiment("dev", str(DATA_DIR))
    with pytest.raises(FileNotFoundError, match=r"valid0\.txt"):
        load_yelp_sentiment("test", str(DATA_DIR / "missing"))


def test_the_judge_learns_sentiment_from_training_sentences_only(yelp):
    rows = random.Random(0).sample(range(len(yelp["train"])), 20000)
    train = yelp["train"].select(rows)
    judge = SentimentJudge(train["text"], train["label"])
    assert judge.accuracy(yelp["test"]["text"], yelp["test"]["label"]) > 0.9
    assert judge.predict(["the food was delicious and the staff friendly .", "worst service ever ."]) == [1, 0]


def test_the_kneser_ney_model_is_a_distribution_and_prefers_real_sentences(yelp):
    model = KneserNeyTrigram(yelp["train"]["text"][:30000])
    words = [*model.unigrams, "never-seen-word"]
    for context in (("the", "food"), ("<s>", "<s>"), ("unseen", "context")):
        assert sum(model.probability(*context, word) for word in words) == pytest.approx(1.0, abs=1e-9)
    real = yelp["test"]["text"][:300]
    shuffled = [" ".join(random.Random(i).sample(s.split(), len(s.split()))) for i, s in enumerate(real)]
    assert model.perplexity(real) < 0.5 * model.perplexity(shuffled)
    assert copy_rate([yelp["train"]["text"][5], "a sentence nobody wrote"], yelp["train"]["text"]) == 0.5


def test_transfer_moves_each_sentence_towards_the_other_label_and_names_the_operating_point():
    latents = torch.zeros(4, 2)
    labels = [0, 1, 0, 1]
    vector = torch.tensor([1.0, 0.0])

    class Judge:  # positive where the first coordinate ended up positive
        def predict(self, texts):
            return [int(float(text) > 0) for text in texts]

    def decode(moved):
        return [f"{value:.2f}" for value in moved[:, 0].tolist()]

    curve = transfer_curve(latents, labels, ["0.00"] * 4, vector, decode, Judge(), strengths=(0.0, 1.0))
    assert curve["outputs"]["1.0"] == ["1.00", "-1.00", "1.00", "-1.00"]
    assert [row["accuracy"] for row in curve["rows"]] == [0.5, 1.0]
    assert curve["operating_point"]["strength"] == 1.0
    assert operating_point([{"strength": 1, "accuracy": 0.5, "content_bleu": 80.0},
                            {"strength": 2, "accuracy": 0.8, "content_bleu": 10.0}])["strength"] == 1  # fmt: skip


@pytest.fixture
def vector_model(tokenizer, tmp_path, ptb_lines):
    model = informative(tiny_model("twr-vae", len(tokenizer)))
    model.generation_config.max_length = 12
    vector = model.attribute_vector(ptb_lines[:20], ptb_lines[20:40], tokenizer)
    model.add_attribute_vector("positive", vector)
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model, vector, folder


def test_a_named_vector_travels_with_the_weights_and_loads_without_the_package(vector_model, tmp_path):
    model, vector, folder = vector_model
    assert (folder / "attribute_vectors.safetensors").is_file()
    loaded = run_without_package(
        f"""
        from transformers import AutoModel, AutoTokenizer, pipeline
        model = AutoModel.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
        tokenizer = AutoTokenizer.from_pretrained({str(folder)!r}, trust_remote_code=True)
        vae = pipeline("text-vae", model={str(folder)!r}, trust_remote_code=True)
        print(json.dumps({{
            "vector": model.attribute_vectors["positive"].tolist(),
            "shifted": model.shift(["the company said"], "positive", tokenizer, strength=2.0, max_new_tokens=6),
            "pipeline": vae.shift(["the company said"], "positive", strength=2.0, max_new_tokens=6),
        }}))
        """,
        tmp_path,
    )
    torch.testing.assert_close(torch.tensor(loaded["vector"]), vector)
    assert loaded["shifted"] == model.shift(["the company said"], vector, model_tokenizer(folder), strength=2.0,
                                            max_new_tokens=6)  # fmt: skip
    assert [row["shifted"] for row in loaded["pipeline"]] == loaded["shifted"]


def model_tokenizer(folder):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


def test_a_vector_of_other_weights_is_not_loaded_nor_saved(vector_model, tmp_path):
    from modeling_twrvae import TWRVAEModel

    model, _, folder = vector_model
    with torch.no_grad():
        model.decoder.lm_head.bias.add_(1.0)  # the weights change after the vector was made
    with pytest.warns(UserWarning, match=r"made with other weights"):
        model.save_pretrained(tmp_path / "changed")
    assert not (tmp_path / "changed" / "attribute_vectors.safetensors").exists()
    weights = folder / "model.safetensors"
    model.save_pretrained(tmp_path / "other")
    weights.write_bytes((tmp_path / "other" / "model.safetensors").read_bytes())  # the folder's weights replaced
    with pytest.warns(UserWarning, match=r"made with other weights .* not loaded"):
        loaded = TWRVAEModel.from_pretrained(folder)
    assert loaded.attribute_vectors == {}
    with pytest.raises(ValueError, match=r"no attribute vector 'positive' \(it has: none\)"):
        loaded.shift(["the company said"], "positive", model_tokenizer(folder))


def test_the_command_line_adds_a_vector_to_a_model_and_shifts_by_its_name(tokenizer, tmp_path, ptb_lines, capsys):
    model = informative(tiny_model("twr-vae", len(tokenizer)))
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    (tmp_path / "with.txt").write_text("\n".join(ptb_lines[:20]))
    (tmp_path / "without.txt").write_text("\n".join(ptb_lines[20:40]))
    weights = (tmp_path / "model" / "model.safetensors").read_bytes()
    status = cli_main(["attribute-vector", str(tmp_path / "model"), "--with", str(tmp_path / "with.txt"),
                       "--without", str(tmp_path / "without.txt"), "--into-model", "positive", "--json"])  # fmt: skip
    assert status == 0
    record = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert record["name"] == "positive" and (tmp_path / "model" / "model.safetensors").read_bytes() == weights
    expected = model.attribute_vector(ptb_lines[:20], ptb_lines[20:40], tokenizer)
    status = cli_main(["shift", str(tmp_path / "model"), "--vector", "positive", "--strength", "2",
                       "--max-new-tokens", "6", "the company said"])  # fmt: skip
    assert status == 0
    shifted = capsys.readouterr().out.strip()
    assert shifted == model.shift(["the company said"], expected, tokenizer, strength=2.0, max_new_tokens=6)[0]
    assert cli_main(["shift", str(tmp_path / "model"), "--vector", "negative", "the company said"]) != 0
    assert "no attribute vector of that name (it has: positive)" in capsys.readouterr().err


def test_a_tiny_trained_model_s_vector_moves_the_judge_s_label(yelp, tmp_path):
    """A small TWR-VAE trained for 2,000 updates on the short training sentences (at most 5 words): moving each
    short test sentence along its `positive` vector towards the other label makes the judge give that label more
    often the further it goes."""
    from test_training import run
    from transformers import AutoModel, AutoTokenizer

    short = [(t, y) for t, y in zip(yelp["train"]["text"], yelp["train"]["label"], strict=True) if len(t.split()) <= 5]
    (tmp_path / "short.txt").write_text("\n".join(text for text, _ in short) + "\n")
    run(tmp_path, "model", dataset=None, data_dir=None, train_split=None, train_file=tmp_path / "short.txt",
        validation_split_percentage=5, max_train_samples=None, max_eval_samples=200, max_length=8,
        config_overrides="embedding_size=64,hidden_size=128,latent_size=8,word_dropout=0.6,bow_loss_weight=3.0",
        per_device_train_batch_size=64, learning_rate=0.003, max_train_steps=2000, eval_steps=2000,
        logging_steps=500, seed=0)  # fmt: skip
    model = AutoModel.from_pretrained(tmp_path / "model").eval()
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "model")
    judge = SentimentJudge([t for t, _ in short], [y for _, y in short])
    test = [(t, y) for t, y in zip(yelp["test"]["text"], yelp["test"]["label"], strict=True) if len(t.split()) <= 5]
    texts, labels = [t for t, _ in test[:200]], [y for _, y in test[:200]]
    vector = model.attribute_vector([t for t, y in short if y == 1][:2000], [t for t, y in short if y == 0][:2000],
                                    tokenizer)  # fmt: skip
    curve = transfer_curve(model.posterior_modes(texts, tokenizer), labels, texts, vector,
                           lambda z: model.decode_latents(z, tokenizer, max_new_tokens=8), judge,
                           strengths=(0.0, 1.0, 3.0))  # fmt: skip
    accuracy = [row["accuracy"] for row in curve["rows"]]
    assert accuracy[0] < 0.4 and accuracy[1] > accuracy[0] and accuracy[2] > accuracy[0] + 0.4, accuracy
