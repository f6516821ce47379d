import json
import os
import socket
import subprocess
import sys

import pytest
import torch
import yaml
from accelerate.state import AcceleratorState, GradientState
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModel, AutoTokenizer, set_seed

from modeling_twrvae import TWRVAEModel
from modeling_twrvae.commands import train
from modeling_twrvae.trainer import precision
from modeling_twrvae.trainer.checkpointing import unshare_flattened_weights
from modeling_twrvae.trainer.steps import loss_scale
from modeling_twrvae.trainer.tasks import LanguageTask

from helpers import DATA_DIR, REPO_ROOT

TINY = "embedding_size=24,hidden_size=16,latent_size=8"


def run(tmp_path, name, *extra, **options):
    """training/train.py's main() in this process, on a small slice of E2E."""
    settings = {
        "dataset": "e2e",
        "data_dir": str(DATA_DIR),
        "train_split": "validation",
        "validation_split_percentage": "20",
        "max_train_samples": "80",
        "max_eval_samples": "20",
        "per_device_train_batch_size": "16",
        "per_device_eval_batch_size": "16",
        "config_overrides": TINY,
        "learning_rate": "0.003",
        "max_train_steps": "6",
        "logging_steps": "1",
        "output_dir": str(tmp_path / name),
    }
    settings.update({key: str(value) for key, value in options.items()})
    argv = [item for key, value in settings.items() if value != "None" for item in (f"--{key}", value)] + list(extra)
    # Each run in this process starts like a new process would: accelerate's state is a per-process singleton.
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    return train.main(argv)


def weights(folder):
    return load_file(str(folder / "model.safetensors"))


def test_training_leaves_a_loadable_model_logs_and_a_plot(tmp_path):
    summary = run(tmp_path, "run", eval_steps=3, checkpointing_steps=3)
    out = tmp_path / "run"
    assert summary["global_step"] == 6 and summary["best_step"] in (3, 6)
    for name in ("model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "modeling_twrvae.py"):
        assert (out / name).is_file(), name
    assert not list(out.glob("*.bin"))
    model, tokenizer = AutoModel.from_pretrained(out), AutoTokenizer.from_pretrained(out)
    assert isinstance(model, TWRVAEModel) and len(tokenizer) == model.config.vocab_size
    assert model.config.hidden_size == 16 and model.config.latent_size == 8

    results = json.loads((out / "eval_results.json").read_text())
    assert results["step"] == summary["best_step"] and results["num_sentences"] == 20
    assert results["elbo_nll"] == pytest.approx(results["reconstruction_loss"] + results["kl_decoded"])
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3, 4, 5, 6]
    assert [r["step"] for r in records if "eval_elbo_nll" in r] == [3, 6]
    assert (out / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    resolved = yaml.safe_load((out / "training_config.yaml").read_text())
    assert resolved["config_overrides"] == {"embedding_size": 24, "hidden_size": 16, "latent_size": 8}
    assert resolved["dataset"] == "e2e" and resolved["max_train_steps"] == 6
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-6"]
    assert not list(out.glob(".*tmp*"))  # nothing half-written left behind

    with pytest.raises(FileExistsError, match="holds an earlier run.*--resume_from_checkpoint latest"):
        run(tmp_path, "run")


@pytest.mark.parametrize(
    "preset, overrides",
    [("twr-vae", ",dropout=0.3,word_dropout=0.2"), ("sa-vae", ",svi_steps=2"), ("bn-vae", ",dropout=0.3")],
)
def test_resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one(tmp_path, preset, overrides):
    # 80 texts, 64 for training in batches of 16: 4 updates an epoch, so the run crosses an epoch after resuming.
    # SA-VAE's refinement and BN-VAE's batch statistics carry state a resume must restore as well.
    options = {
        "preset": preset,
        "checkpointing_steps": 3,
        "save_total_limit": 5,
        "eval_steps": 2,
        "config_overrides": TINY + overrides,
    }
    run(tmp_path, "whole", **options)
    whole = tmp_path / "whole"

    # the "crash": a second run that only has what the first had at step 3
    interrupted = tmp_path / "interrupted"
    interrupted.mkdir()
    (interrupted / "checkpoint-3").symlink_to(whole / "checkpoint-3", target_is_directory=True)
    lines = (whole / "metrics.jsonl").read_text().splitlines()
    (interrupted / "metrics.jsonl").write_text("\n".join(lines) + "\n")  # logged beyond step 3 as well
    run(tmp_path, "interrupted", resume_from_checkpoint="latest", **options)

    final_whole, final_resumed = weights(whole / "checkpoint-6"), weights(interrupted / "checkpoint-6")
    assert final_whole.keys() == final_resumed.keys()
    for key in final_whole:
        assert torch.equal(final_whole[key], final_resumed[key]), key
    assert not torch.equal(
        weights(whole / "checkpoint-3")["decoder.lm_head.weight"], final_whole["decoder.lm_head.weight"]
    )
    resumed_log = [json.loads(line) for line in (interrupted / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in resumed_log if "loss" in r] == [1, 2, 3, 4, 5, 6]  # nothing logged twice
    original = [json.loads(line) for line in lines]
    assert [r for r in resumed_log if "loss" in r] == [r for r in original if "loss" in r]


def test_yaml_config_with_command_line_overrides(tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"dataset": "ptb", "learning_rate": 0.5, "config_overrides": {"latent_size": 4}}))
    args = train.parse_args(["--config", str(config), "--learning_rate", "0.01", "--output_dir", "x"])
    assert args.dataset == "ptb" and args.learning_rate == 0.01 and args.config_overrides == {"latent_size": 4}
    args = train.parse_args(
        ["--config", str(config), "--config_overrides", "latent_size=9,rnn_type=gru", "--output_dir", "x"]
    )
    assert args.config_overrides == {"latent_size": 9, "rnn_type": "gru"}
    config.write_text(yaml.safe_dump({"learning_rat": 0.1}))
    with pytest.raises(SystemExit) as raised:  # a usage error: argparse's status 2
        train.parse_args(["--config", str(config), "--output_dir", "x"])
    assert raised.value.code == 2 and "unknown setting(s) ['learning_rat']" in capsys.readouterr().err
    for path in sorted((REPO_ROOT / "modeling_twrvae" / "trainer" / "configs").rglob("*.yaml")):
        parsed = train.parse_args(["--config", str(path)])
        assert parsed.output_dir and parsed.dataset, path
    for corpus in ("ptb", "yahoo", "yelp", "e2e"):  # the papers' configs optimise what the papers' code does
        for path in sorted((REPO_ROOT / "modeling_twrvae" / "trainer" / "configs" / corpus).glob("*.yaml")):
            parsed = train.parse_args(["--config", str(path)])
            assert (parsed.loss_reduction, parsed.pre_tokenization) == ("sum", "papers"), path
            assert (parsed.weight_decay, parsed.adam_epsilon) == (1e-5, 1e-6), path


def test_truncation_keeps_eos_and_is_counted(tokenizer):
    from datasets import Dataset

    data = Dataset.from_dict({"text": ["a b c d e f g h", "a b"]})
    encoded, count = LanguageTask.tokenize(data, tokenizer, max_length=5, name="test")
    assert count == 1
    assert encoded[0]["input_ids"][-1] == tokenizer.eos_token_id and len(encoded[0]["input_ids"]) == 5
    assert encoded[1]["length"] == 4


def test_bad_data_is_a_clear_error(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(ValueError, match="is empty"):
        run(tmp_path, "a", train_file=empty, validation_file=empty)
    with pytest.raises(FileNotFoundError, match=r"yahoo\.train\.txt not found"):
        run(tmp_path, "b", dataset="yahoo", train_split="train")


def test_non_finite_loss_stops_with_the_step_and_the_last_checkpoint(tmp_path, monkeypatch):
    original = TWRVAEModel.forward
    calls = {"training": 0}

    def forward(self, *args, **kwargs):
        output = original(self, *args, **kwargs)
        if "kl_weight" in kwargs:
            calls["training"] += 1
            if calls["training"] == 3:
                output.loss = output.loss * float("nan")
        return output

    monkeypatch.setattr(TWRVAEModel, "forward", forward)
    with pytest.raises(
        train.NonFiniteLossError, match=r"became nan at update 3\. Last good checkpoint: .*checkpoint-2"
    ):
        run(tmp_path, "nan", checkpointing_steps=2)


def test_annealing_free_bits_accumulation_clipping_and_bf16_run(tmp_path):
    summary = run(
        tmp_path,
        "options",
        kl_schedule="linear",
        kl_anneal_steps=4,
        free_bits=0.1,
        gradient_accumulation_steps=2,
        max_grad_norm=1.0,
        mixed_precision="bf16",
        max_train_steps=3,
        preset="vae-lstm",
        report_to="tensorboard",
    )
    assert summary["global_step"] == 3
    assert list((tmp_path / "options").rglob("events.out.tfevents.*"))  # the tracker wrote its log
    records = [json.loads(line) for line in (tmp_path / "options" / "metrics.jsonl").read_text().splitlines()]
    assert [r["kl_weight"] for r in records if "kl_weight" in r] == [0.0, 0.25, 0.5]


def test_bf16_on_a_cpu_without_bf16_kernels_falls_back_to_fp32_with_a_warning(monkeypatch):
    # Seen on an AVX2-only CPU: oneDNN has no bf16 LSTM primitive there ("could not create a primitive descriptor").
    args = train.parse_args(["--output_dir", "x", "--mixed_precision", "bf16", "--use_cpu"])
    monkeypatch.setattr(precision, "cpu_supports_bf16", lambda: False)
    with pytest.warns(UserWarning, match="no bf16 support.*Training in fp32"):
        assert precision.usable_mixed_precision(args) == "no"
    monkeypatch.setattr(precision, "cpu_supports_bf16", lambda: True)
    assert precision.usable_mixed_precision(args) == "bf16"
    args.mixed_precision = "no"
    assert precision.usable_mixed_precision(args) == "no"


def free_port():
    with socket.socket() as handle:
        handle.bind(("127.0.0.1", 0))
        return handle.getsockname()[1]


def test_two_processes_with_half_the_batch_make_the_same_update_as_one(tmp_path):
    common = [
        "--dataset", "e2e", "--data_dir", str(DATA_DIR), "--train_split", "validation",
        "--validation_split_percentage", "20", "--max_train_samples", "80", "--max_eval_samples", "20", "--config_overrides",
        TINY + ",dropout=0.0", "--sample_posterior", "false", "--learning_rate", "0.003",
        "--max_train_steps", "2", "--checkpointing_steps", "2", "--logging_steps", "1",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    script = str(REPO_ROOT / "training" / "train.py")
    one = subprocess.run(
        [sys.executable, script, *common, "--per_device_train_batch_size", "16", "--output_dir", str(tmp_path / "one")],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
         "--master_port", str(free_port()), script, *common, "--per_device_train_batch_size", "8",
         "--output_dir", str(tmp_path / "two")],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert two.returncode == 0, two.stderr[-3000:]
    assert "2 process(es)" in two.stderr
    single, double = weights(tmp_path / "one" / "checkpoint-2"), weights(tmp_path / "two" / "checkpoint-2")
    for key in single:
        torch.testing.assert_close(double[key], single[key], rtol=1e-5, atol=1e-6)
    set_seed(42)  # what train.py does before building the model: these are the weights both runs started from
    initial = TWRVAEModel(AutoConfig.from_pretrained(tmp_path / "one")).state_dict()
    assert not torch.equal(initial["decoder.lm_head.weight"], single["decoder.lm_head.weight"])
    one_log = [json.loads(line) for line in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    two_log = [json.loads(line) for line in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    assert one_log[0]["loss"] == pytest.approx(two_log[0]["loss"], rel=1e-5)


def reference_objective(model, input_ids):
    """The papers' code's objective on a batch of equal-length sentences (no padding): the token cross-entropy and
    the KL summed over the batch, the KL also over timesteps and divided by the (padded) length."""
    output = model(input_ids=input_ids, sample_posterior=False)
    logits, mean, logvar = output.logits[:, :-1], output.posterior_mean, output.posterior_logvar
    reconstruction = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), input_ids[:, 1:].reshape(-1), ignore_index=0, reduction="sum"
    )
    kl = -0.5 * torch.sum(1 + logvar - mean.pow(2) - logvar.exp()) / input_ids.shape[1]
    return reconstruction + kl


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_summed_loss_gives_the_reference_codes_adam_update(reduction, tokenizer, ptb_lines):
    from types import SimpleNamespace

    from helpers import tiny_model

    texts = [line for line in ptb_lines if len(line.split()) == 9][:6]
    input_ids = tokenizer(texts, return_tensors="pt")["input_ids"]
    assert input_ids.shape == (6, 11)

    def one_adam_step(loss_of):
        model = tiny_model("twr-vae", len(tokenizer), seed=3).eval()  # eval: no dropout, z = posterior mean
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, eps=1e-6, weight_decay=1e-5)
        loss_of(model).backward()
        optimizer.step()
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    args = SimpleNamespace(loss_reduction=reduction, gradient_accumulation_steps=1)
    accelerator = SimpleNamespace(num_processes=1)
    package = one_adam_step(
        lambda m: m(input_ids=input_ids, sample_posterior=False).loss * loss_scale(args, accelerator, 6)
    )
    reference = one_adam_step(lambda m: reference_objective(m, input_ids))
    if reduction == "sum":
        torch.testing.assert_close(package, reference, rtol=0, atol=1e-7)
    else:  # the batch mean is another problem: Adam's eps and coupled weight decay weigh 6 times more
        assert (package - reference).abs().max() > 1e-6


def pack_like_cudnn(rnn: torch.nn.RNNBase) -> None:
    """Make an RNN's weights views of one buffer, as cuDNN's flatten_parameters does on a GPU."""
    params = [getattr(rnn, name) for name in rnn._flat_weights_names]
    flat = torch.cat([p.detach().flatten() for p in params])
    offset = 0
    for param in params:
        param.data = flat[offset : offset + param.numel()].view_as(param)
        offset += param.numel()


def test_checkpoints_keep_every_weight_of_rnns_packed_into_one_buffer(tmp_path, tokenizer):
    from accelerate import Accelerator

    from helpers import tiny_model

    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    model = tiny_model("twr-vae", len(tokenizer))
    pack_like_cudnn(model.encoder.layers[0])
    pack_like_cudnn(model.decoder.rnn)
    assert (
        model.decoder.rnn.weight_hh_l0.untyped_storage().data_ptr()
        == model.decoder.rnn.weight_ih_l0.untyped_storage().data_ptr()
    )
    expected = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    accelerator = Accelerator(cpu=True)
    accelerator.register_save_state_pre_hook(unshare_flattened_weights)
    model = accelerator.prepare(model)
    accelerator.save_state(str(tmp_path / "checkpoint"))
    saved = load_file(str(tmp_path / "checkpoint" / "model.safetensors"))
    assert set(saved) == set(expected)  # without the hook accelerate drops weight_hh, bias_ih and bias_hh
    for name, tensor in expected.items():
        assert torch.equal(saved[name], tensor), name
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


def test_torch_compile_is_plumbed_to_the_model_and_recorded(tmp_path, monkeypatch):
    """--torch_compile compiles the model in place with dynamic shapes and training_config.yaml records it (the
    compilation itself is not run here: inductor takes minutes on a small CPU; benchmarks/torch_compile.py times it)."""
    calls = []
    monkeypatch.setattr(TWRVAEModel, "compile", lambda self, **kwargs: calls.append(kwargs), raising=False)
    summary = run(tmp_path, "compiled", "--torch_compile", max_train_steps=3, eval_steps=3)
    assert summary["global_step"] == 3 and calls == [{"dynamic": True}]
    assert yaml.safe_load((tmp_path / "compiled" / "training_config.yaml").read_text())["torch_compile"] is True
    assert train.parse_args(["--output_dir", "x"]).torch_compile is False


def test_delexicalized_e2e_trains_on_placeholders_and_records_it(tmp_path):
    from modeling_twrvae.data.e2e import was_delexicalized

    run(tmp_path, "delex", delexicalize="true", max_train_steps=2)
    out = tmp_path / "delex"
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert {"xname", "xnear"} <= set(tokenizer.get_vocab())  # every text has them, whatever the minimum frequency
    assert was_delexicalized(out) and not was_delexicalized(tmp_path)
    with pytest.raises(SystemExit):  # argparse's error: E2E's meaning representations are needed
        run(tmp_path, "other", delexicalize="true", dataset="ptb")
