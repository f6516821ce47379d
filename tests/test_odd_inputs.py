"""The pipeline, the command line, the data readers and evaluate.py under faults and odd inputs: batched
pipelines, feature extraction, the remote-code path, byte-order marks, JSON rows, one-sentence metrics, and the
one-line errors the README promises."""

import io
import json
import os
import shutil
import sys

import pytest
import torch
from transformers import AutoModel, pipeline

from modeling_twrvae import TextVAEPipeline, train_tokenizer
from modeling_twrvae.commands import evaluate
from modeling_twrvae.commands.cli import main as cli_main
from modeling_twrvae.data.corpora import load_text_files
from modeling_twrvae.data.dialogue_corpora import read_dailydialog, read_switchboard
from modeling_twrvae.metrics.likelihood import active_units, likelihoods, mutual_information, summarize_likelihoods
from modeling_twrvae.texts import posterior_means
from modeling_twrvae.trainer.errors import run_main

from helpers import run_without_package
from saved_text_vaes import save_text_vae

BOM = "\ufeff".encode()


@pytest.fixture(scope="module")
def folder(tokenizer, tmp_path_factory):
    return save_text_vae(tmp_path_factory.mktemp("probe") / "tiny-twrvae", tokenizer)


@pytest.fixture(scope="module")
def model(folder):
    return AutoModel.from_pretrained(folder).eval()


@pytest.fixture(scope="module")
def vae(folder):
    # the package's own class (the registered task; the remote-code copy is the same file)
    return pipeline("text-vae", model=str(folder), pipeline_class=TextVAEPipeline)


@pytest.fixture(scope="module")
def texts(ptb_lines):
    return [line for line in ptb_lines if 5 <= len(line.split()) <= 12 and "<unk>" not in line][:3]


# Item 5: batched pipeline calls give each input its own outputs


@pytest.mark.parametrize(
    "options",
    [
        {"num_beams": 2, "num_return_sequences": 2},
        {"num_beams": 2},
        {"num_beams": 3, "num_return_sequences": 2, "return_latent": True},
        {"do_sample": True, "top_k": 1, "num_return_sequences": 2},  # deterministic sampling, two rows per input
    ],
)
def test_batched_pipeline_equals_one_by_one(vae, texts, options):
    one_by_one = [vae(text, max_new_tokens=8, **options) for text in texts]
    batched = vae(texts, batch_size=3, max_new_tokens=8, **options)
    assert batched == one_by_one
    assert [output["text"] for output in batched] == texts
    assert len({output["reconstruction"] for output in batched}) == len(texts)  # the comparison means something
    if options.get("num_return_sequences", 1) > 1:
        assert all(len(output["reconstructions"]) == 2 for output in batched)


def test_an_empty_list_gives_an_empty_list(vae, folder):
    assert vae([]) == []
    features = pipeline("feature-extraction", model=str(folder), trust_remote_code=True)
    assert features([]) == []


# Item 6: feature extraction gives each input's posterior mean, not the loss


def test_feature_extraction_gives_posterior_means(folder, model, tokenizer, texts):
    config = json.loads((folder / "config.json").read_text())
    assert (
        config["custom_pipelines"]["feature-extraction"]["impl"] == "pipeline_twrvae.TextVAEFeatureExtractionPipeline"
    )
    features = pipeline("feature-extraction", model=str(folder), trust_remote_code=True)
    expected = posterior_means(model, tokenizer, texts)
    one_by_one = [features(text) for text in texts]
    assert all(len(output) == 1 and len(output[0]) == model.config.latent_size for output in one_by_one)
    torch.testing.assert_close(torch.tensor([output[0] for output in one_by_one]), expected)
    batched = features(texts, batch_size=3)
    torch.testing.assert_close(torch.tensor(batched), torch.tensor(one_by_one))
    assert features(texts[0], return_tensors=True).shape == (1, model.config.latent_size)
    assert not torch.allclose(expected[0], expected[1])


def test_feature_extraction_without_remote_code_is_refused_not_the_loss(folder):
    # the package cannot replace transformers' own feature-extraction pipeline (which would return the loss): the
    # model's recorded one needs trust_remote_code=True, and asking without it is transformers' clear refusal
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        pipeline("feature-extraction", model=str(folder))


# Item 15 (pipeline part): the registered task serves a saved folder without remote code


def test_text_vae_pipeline_needs_no_remote_code_where_the_package_is_imported(folder, model, tokenizer, texts):
    vae = pipeline("text-vae", model=str(folder))
    assert type(vae) is TextVAEPipeline
    assert vae(texts[0])["reconstruction"] == model.reconstruct(texts[:1], tokenizer)[0]


def test_remote_code_pipelines_without_the_package(vae, folder, model, tokenizer, texts, tmp_path):
    expected = {
        "reconstructions": [output["reconstruction"] for output in vae(texts, num_beams=2, num_return_sequences=2)],
        "features": posterior_means(model, tokenizer, texts).tolist(),
    }
    result = run_without_package(
        f"""
        import torch
        from transformers import pipeline
        texts = {texts!r}
        vae = pipeline("text-vae", model={str(folder)!r}, trust_remote_code=True)
        assert type(vae).__module__.startswith("transformers_modules"), type(vae).__module__
        outputs = vae(texts, batch_size=3, num_beams=2, num_return_sequences=2)
        features = pipeline("feature-extraction", model={str(folder)!r}, trust_remote_code=True)
        print(json.dumps({{"reconstructions": [o["reconstruction"] for o in outputs],
                          "features": [f[0] for f in features(texts, batch_size=2)]}}))
        """,
        tmp_path,
    )
    assert result["reconstructions"] == expected["reconstructions"]
    torch.testing.assert_close(torch.tensor(result["features"]), torch.tensor(expected["features"]))


# Item 11: byte-order marks, JSON rows, one-sentence metrics


@pytest.mark.parametrize(
    ("name", "content", "column"),
    [
        ("data.txt", b"the company said\nthe market fell\n", None),
        ("data.csv", b"ref,mr\nthe company said,a\nthe market fell,b\n", "ref"),
        ("data.jsonl", b'{"text": "the company said"}\n{"text": "the market fell"}\n', None),
    ],
)
def test_a_byte_order_mark_is_not_part_of_the_first_word(tmp_path, name, content, column):
    (tmp_path / name).write_bytes(BOM + content)
    texts = list(load_text_files({"train": tmp_path / name}, column)["train"]["text"])
    assert texts == ["the company said", "the market fell"]
    assert "\ufeffthe" not in train_tokenizer(texts, vocab_size=50).get_vocab()


def test_dialogue_files_with_a_byte_order_mark(tmp_path):
    daily = tmp_path / "dialogues.utts.txt"
    daily.write_bytes(BOM + b"hello there __eou__ hi __eou__\n")
    assert read_dailydialog(daily)[0]["turns"] == ["hello there", "hi"]
    board = tmp_path / "dialogues.jsonl"
    board.write_bytes(BOM + json.dumps({"utts": [["A", "hello there"], ["B", "hi"]]}).encode() + b"\n")
    assert read_switchboard(board)[0]["turns"] == ["hello there", "hi"]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ('{"text": "a b"}\n{"other": "c"}\n', r"line 2: no 'text' key \(its keys: \['other'\]\)"),
        ('{"text": "a b"}\n\n{"text": 5}\n', r"line 3: 'text' is 5 \(a JSON number\), not a string"),
        ('{"text": "a b"}\n{"text": null}\n', r"line 2: 'text' is null, not a string"),
        ('{"text": "a b"}\n["a b"]\n', r"line 2: a JSON array, not an object"),
        ('{"text": "a b"}\n{"text": "c\n', r"line 2, is not valid JSON"),
        ('[{"text": "a b"}, {"txt": "c"}]', r"item 2: no 'text' key"),
    ],
)
def test_json_rows_without_their_text_are_an_error_naming_the_line(tmp_path, rows, message):
    path = tmp_path / "data.jsonl"
    path.write_text(rows)
    with pytest.raises(ValueError, match=message):
        load_text_files({"train": path})


def test_mutual_information_and_active_units_need_two_sentences(folder, model, tokenizer, texts, tmp_path, capsys):
    assert mutual_information(torch.zeros(1, 3), torch.zeros(1, 3), torch.zeros(1, 3)) is None
    assert active_units(torch.zeros(1, 3)) is None
    result = likelihoods(model, tokenizer(texts[:1])["input_ids"], iw_samples=3, progress=False)
    summary = summarize_likelihoods(result, 3)
    assert summary["mutual_information"] is None and summary["active_units"] is None
    assert summary["iw_nll"] > 0

    data = tmp_path / "one.txt"
    data.write_text(texts[0] + "\n")
    output = tmp_path / "results.json"
    evaluate.main(evaluation_argv(folder, data, output))
    results = json.loads(output.read_text())
    assert results["num_sentences"] == 1
    assert results["mutual_information"] is None and results["active_units"] is None
    note = "MI and active units are not measured (null in the JSON)"
    assert note in output.with_suffix(".md").read_text() and note in capsys.readouterr().out


def evaluation_argv(model, data, output, *extra):
    return ["--model_name_or_path", str(model), "--validation_file", str(data), "--iw_samples", "2",
            "--num_prior_samples", "2", "--num_interpolation_pairs", "1", "--max_new_tokens", "4",
            "--output_file", str(output), "--no_progress", *extra]  # fmt: skip


# The README's promise: one line `error: ...`, naming the problem and the fix


def damaged_copy(folder, tmp_path, damage):
    copy = shutil.copytree(folder, tmp_path / "damaged")
    config = json.loads((copy / "config.json").read_text())
    if damage == "corrupt tokenizer.json":
        (copy / "tokenizer.json").write_text('{"trunc')
    elif damage == "no tokenizer.json":
        (copy / "tokenizer.json").unlink()
    elif damage == "absurd size":
        (copy / "config.json").write_text(json.dumps({**config, "hidden_size": 10**12}))
    elif damage == "dropout as a string":
        (copy / "config.json").write_text(json.dumps({**config, "dropout": "0.5"}))
    return copy


MODEL_DAMAGES = {
    "corrupt tokenizer.json": "tokenizer.json could not be read",
    "no tokenizer.json": "no tokenizer.json",
    "absurd size": "could not be built from its config.json",
    # today the TypeError of comparing a string; with config type validation, that check's ValueError
    "dropout as a string": "dropout|config.json holds a value of the wrong type",
}


def evaluate_error(argv) -> str:
    with pytest.raises(SystemExit) as raised:
        run_main(lambda: evaluate.main(argv))
    message = str(raised.value.code)
    assert message.startswith("error: ") and "\n" not in message, message
    return message


@pytest.mark.parametrize("damage", sorted(MODEL_DAMAGES))
def test_evaluate_on_a_damaged_model_folder_is_one_error_line(folder, tmp_path, texts, damage):
    data = tmp_path / "data.txt"
    data.write_text("\n".join(texts) + "\n")
    damaged = damaged_copy(folder, tmp_path, damage)
    message = evaluate_error(evaluation_argv(damaged, data, tmp_path / "results.json"))
    assert any(part in message for part in MODEL_DAMAGES[damage].split("|")), message
    assert "sentencepiece" not in message
    assert not (tmp_path / "results.json").exists()


def test_evaluate_on_a_file_given_as_the_model_says_it_is_not_a_model_folder(folder, tmp_path, texts):
    data = tmp_path / "data.txt"
    data.write_text("\n".join(texts) + "\n")
    message = evaluate_error(evaluation_argv(folder / "model.safetensors", data, tmp_path / "results.json"))
    assert "model.safetensors is a file, not a model folder" in message


def test_a_fifo_or_a_device_as_input_is_not_a_regular_file(folder, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (fifo, "/dev/zero"):
        with pytest.raises(ValueError, match="is not a regular file"):
            load_text_files({"eval": path})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_text_files({"eval": tmp_path / "missing.txt"})
    message = evaluate_error(evaluation_argv(folder, fifo, tmp_path / "results.json"))
    assert "fifo is not a regular file" in message


def call(args, capsys, monkeypatch, stdin=b""):
    # standard input as the terminal gives it: bytes beneath, and undecodable ones passed on as surrogates
    stream = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8", errors="surrogateescape")
    monkeypatch.setattr(sys, "stdin", stream)
    status = cli_main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def cli_error(args, capsys, monkeypatch, stdin=b"") -> str:
    status, out, err = call(args, capsys, monkeypatch, stdin)
    assert status == 2 and out == "", (status, out, err)  # the CLI's documented status for every error
    assert len(err.strip().splitlines()) == 1, err
    return err


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["reconstruct", "{folder}"], b"the company said\nthe \xff said\n", "standard input, line 2, is not UTF-8"),
        (["reconstruct", "{folder}", "the \udcff said"], b"", "The text is not UTF-8 text (byte 0xff at character 5)"),
        (["encode", "{folder}", "--batch-size", "0"], b"the company\n", "--batch-size must be >= 1, got 0."),
        (["score", "{folder}", "--batch-size", "0"], b"the company\n", "--batch-size must be >= 1, got 0."),
        (["sample", "{folder}/model.safetensors"], b"", "model.safetensors is a file, not a model folder"),
        (["sample", "{folder}/config.json"], b"", "config.json is a file, not a model folder"),
        (["sample", "/dev/zero"], b"", "/dev/zero is a FIFO, a device or a socket, not a model folder"),
    ],
)
def test_command_line_input_errors(folder, capsys, monkeypatch, args, stdin, message):
    args = [arg.format(folder=folder) for arg in args]
    err = cli_error(args, capsys, monkeypatch, stdin)
    assert message in err and "TextEncodeInput" not in err and "range()" not in err, err


@pytest.mark.parametrize("damage", sorted(MODEL_DAMAGES))
def test_command_line_on_a_damaged_model_folder(folder, tmp_path, capsys, monkeypatch, damage):
    damaged = damaged_copy(folder, tmp_path, damage)
    err = cli_error(["sample", damaged, "-n", "1"], capsys, monkeypatch)
    assert any(part in err for part in MODEL_DAMAGES[damage].split("|")), err
    assert "sentencepiece" not in err


def test_standard_input_with_a_byte_order_mark(folder, model, tokenizer, texts, capsys, monkeypatch):
    status, out, _ = call(["encode", folder], capsys, monkeypatch, BOM + "\n".join(texts).encode() + b"\n")
    assert status == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert [record["text"] for record in records] == texts
    expected = posterior_means(model, tokenizer, texts)
    torch.testing.assert_close(torch.tensor([record["posterior_mean"] for record in records]), expected)


def test_batch_sizes_below_one_are_refused(model, tokenizer, texts):
    with pytest.raises(ValueError, match="`batch_size` must be a positive integer, got 0"):
        posterior_means(model, tokenizer, texts, batch_size=0)
    with pytest.raises(ValueError, match="`batch_size` must be >= 1, got 0"):
        likelihoods(model, tokenizer(texts)["input_ids"], iw_samples=2, batch_size=0, progress=False)
