import json

import pytest
import yaml
from accelerate.state import AcceleratorState, GradientState
from transformers import AutoModel, AutoTokenizer

from modeling_twrvae import TWRCVAEConfig, TWRCVAEModel
from modeling_twrvae.commands import evaluate, train
from modeling_twrvae.metrics.dialogue import WordVectors
from modeling_twrvae.trainer.tasks import DialogueTask, LanguageTask, choose_task

from helpers import DATA_DIR

TINY = "embedding_size=16,utterance_hidden_size=12,context_hidden_size=12,decoder_hidden_size=12,latent_size=6,prior_hidden_size=8,bow_hidden_size=8"


def run_training(tmp_path, dataset, preset="twr-cvae", **options):
    settings = {
        "dataset": dataset,
        "data_dir": str(DATA_DIR),
        "train_split": "validation",
        "validation_split_percentage": "10",
        "preset": preset,
        "max_train_samples": "48",
        "max_eval_samples": "16",
        "per_device_train_batch_size": "16",
        "per_device_eval_batch_size": "16",
        "config_overrides": TINY,
        "learning_rate": "0.003",
        "max_train_steps": "4",
        "eval_steps": "2",
        "logging_steps": "1",
        "max_length": "24",
        "output_dir": str(tmp_path / dataset),
        **{key: str(value) for key, value in options.items()},
    }
    argv = [item for key, value in settings.items() for item in (f"--{key}", value)]
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    return train.main(argv)


def test_train_py_trains_a_dialogue_model_that_evaluate_py_measures(tmp_path):
    summary = run_training(tmp_path, "dailydialog")
    out = tmp_path / "dailydialog"
    assert summary["global_step"] == 4 and summary["best_step"] in (2, 4)
    model, tokenizer = AutoModel.from_pretrained(out), AutoTokenizer.from_pretrained(out)
    assert isinstance(model, TWRCVAEModel) and len(tokenizer) == model.config.vocab_size
    assert model.config.kl_regularizer == "timestep_wise" and model.config.context_window == 10
    assert (out / "modeling_twrcvae.py").is_file()
    results = json.loads((out / "eval_results.json").read_text())
    assert results["num_sentences"] == 16  # validation pairs, from held-out dialogues
    assert results["elbo_nll"] == pytest.approx(results["reconstruction_loss"] + results["kl_decoded"])
    assert yaml.safe_load((out / "training_config.yaml").read_text())["preset"] == "twr-cvae"

    vectors = tmp_path / "vectors.txt"
    WordVectors.train(
        [tokenizer.decode(ids).split() for ids in tokenizer(["hello , how are you ?"] * 5)["input_ids"]], vector_size=8
    ).save(vectors)
    output = tmp_path / "eval.json"
    results = evaluate.main(
        [
            "--model_name_or_path", str(out),
            "--dataset", "dailydialog",
            "--split", "test",
            "--data_dir", str(DATA_DIR),
            "--max_samples", "6",
            "--num_responses", "3",
            "--max_new_tokens", "6",
            "--word_vectors", str(vectors),
            "--output_file", str(output),
        ]
    )  # fmt: skip
    saved = json.loads(output.read_text())
    assert saved["num_contexts"] == 6 and saved["num_responses_scored"] == 6
    for key in ("bleu_precision", "bleu_recall", "bleu_f1", "bow_average", "bow_extrema", "bow_greedy",
                "intra_distinct_1", "inter_distinct_2", "elbo_nll", "kl_decoded"):  # fmt: skip
        assert saved[key] is not None and saved[key] == pytest.approx(results[key]), key
    assert saved["bleu_recall"] >= saved["bleu_precision"]
    assert len(saved["examples"][0]["responses"]) == 3
    assert "| BLEU-R | BLEU-P |" in output.with_suffix(".md").read_text()


def test_switchboard_cvae_with_annealing_and_bag_of_words(tmp_path):
    summary = run_training(tmp_path, "switchboard", preset="cvae", kl_schedule="linear", kl_anneal_steps=4)
    model = AutoModel.from_pretrained(tmp_path / "switchboard")
    assert summary["global_step"] == 4
    assert model.config.kl_regularizer == "last" and model.config.bow_loss_weight == 1.0
    records = [json.loads(line) for line in (tmp_path / "switchboard" / "metrics.jsonl").read_text().splitlines()]
    assert [r["kl_weight"] for r in records if "kl_weight" in r] == [0.0, 0.25, 0.5, 0.75]


def test_a_language_model_preset_on_a_dialogue_corpus_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as raised:  # contradictory settings: a usage error, before any data is read
        run_training(tmp_path, "dailydialog", preset="hr-vae")
    assert raised.value.code == 2 and "needs a dialogue preset" in capsys.readouterr().err


def test_one_rule_picks_the_task_for_the_argument_checks_and_the_run(tmp_path):
    # A saved dialogue model picks the dialogue task without a dialogue preset or corpus, and its
    # --config_overrides are checked against TWRCVAEConfig (they were checked against TWRVAEConfig, which has no
    # context_window, by a second rule of parse_args's own).
    TWRCVAEConfig.from_preset("twr-cvae").save_pretrained(tmp_path / "saved")
    saved = ["--model_name_or_path", str(tmp_path / "saved"), "--config_overrides", "context_window=3"]
    args = train.parse_args([*saved, "--output_dir", "x"])
    assert args.config_overrides == {"context_window": 3}
    assert isinstance(choose_task(args), DialogueTask) and choose_task(args).context_window() == 3
    for argv, task in (
        ([], LanguageTask),
        (["--dataset", "dailydialog"], DialogueTask),
        (["--preset", "cvae"], DialogueTask),
    ):
        assert type(choose_task(train.parse_args([*argv, "--output_dir", "x"]))) is task, argv


def test_free_bits_is_a_language_model_option_refused_for_dialogue_at_parse_time(tmp_path, capsys):
    from modeling_twrvae.commands import train as train_command

    with pytest.raises(SystemExit):
        train_command.parse_args(["--dataset", "dailydialog", "--free_bits", "0.5", "--output_dir", str(tmp_path)])
    assert "--free_bits applies to the text VAEs" in capsys.readouterr().err
