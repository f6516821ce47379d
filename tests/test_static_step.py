"""A training step that a CUDA graph can capture, checked on the CPU: batches padded to a few fixed lengths
(--pad_to_multiple_of) give the loss, gradients and weights of padding to the longest sentence; with its batches
checked on the host, forward and backward read nothing back from the device (no data-dependent shape, no value);
and the logged losses are summed on the device and read only when the run logs, validates or checkpoints."""

import pytest
import torch
from accelerate import Accelerator
from safetensors.torch import load_file
from test_training import TINY, run

from modeling_twrvae import train_tokenizer
from modeling_twrvae.trainer.checkpointing import RunningAverage
from modeling_twrvae.trainer.steps import build_optimizer, train_step

from helpers import tiny_model

PRESETS = ["twr-vae", "twr-vae-mean", "twr-vae-sum", "hr-vae", "vae-lstm", "bn-vae"]
SENTENCES = ["the food was great", "love this place", "bad", "the staff were rude and the food was cold"]


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(SENTENCES * 3, vocab_size=60)


def loss_and_gradients(model, batch):
    model.zero_grad()
    output = model(**batch, kl_weight=1.0, sample_posterior=False, return_logits=False)
    output.loss.backward()
    return output.loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("preset", ["twr-vae", "hr-vae", "twr-vae-mean"])
def test_padding_to_a_multiple_gives_the_loss_and_gradients_of_the_longest(tok, preset):
    model = tiny_model(preset, len(tok), dropout=0.0, bow_loss_weight=1.0).train()
    longest = tok(SENTENCES, padding="longest", return_tensors="pt")
    bucketed = tok(SENTENCES, padding="longest", pad_to_multiple_of=8, return_tensors="pt")
    assert bucketed["input_ids"].shape[1] == 16 > longest["input_ids"].shape[1]
    loss, gradients = loss_and_gradients(model, longest)
    model.static_shapes = True
    static_loss, static_gradients = loss_and_gradients(model, bucketed)
    torch.testing.assert_close(static_loss, loss, rtol=1e-5, atol=1e-5)
    assert static_gradients.keys() == gradients.keys()
    for name, gradient in gradients.items():
        torch.testing.assert_close(static_gradients[name], gradient, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("preset", PRESETS)
def test_forward_and_backward_read_nothing_from_the_device(tok, preset):
    """On the meta device a tensor has no values: an op that needs one (`nonzero`, a boolean index, `.item()`, an
    `if` on a tensor) fails there, as it would make a GPU step wait for the host and break a captured graph."""
    model = tiny_model(preset, len(tok), word_dropout=0.5, bow_loss_weight=1.0).train()
    batch = {
        k: v.to("meta") for k, v in tok(SENTENCES, padding="longest", pad_to_multiple_of=8, return_tensors="pt").items()
    }
    model = model.to("meta")
    with pytest.raises((NotImplementedError, RuntimeError)):  # the default step selects the real rows: it reads
        model(**batch, kl_weight=1.0, return_logits=False)
    model.inputs_checked_by_caller = True
    model.static_shapes = True
    output = model(**batch, kl_weight=1.0, sample_posterior=True, return_logits=False)
    output.loss.backward()
    assert output.loss.device.type == "meta" and model.decoder.lm_head.weight.grad is not None


def test_the_step_and_its_running_sums_stay_on_the_device(tok, monkeypatch):
    class Arguments:
        learning_rate, adam_beta1, adam_beta2, adam_epsilon, weight_decay = 1e-3, 0.9, 0.999, 1e-8, 0.0
        sample_posterior, free_bits, loss_reduction, gradient_accumulation_steps, max_grad_norm = (
            True,
            0.0,
            "mean",
            1,
            1.0,
        )

    model = tiny_model("twr-vae", len(tok), word_dropout=0.5, bow_loss_weight=1.0)
    model.inputs_checked_by_caller = model.static_shapes = True
    accelerator = Accelerator(cpu=True)
    optimizer = build_optimizer(model, Arguments, torch.device("cpu"))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    batch = dict(tok(SENTENCES, padding="longest", pad_to_multiple_of=8, return_tensors="pt"))
    running = RunningAverage(gather=accelerator.gather)

    def read(*args, **kwargs):
        raise AssertionError("the step read a value from the device")

    with monkeypatch.context() as patch:
        for name in ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "__index__"):
            patch.setattr(torch.Tensor, name, read)
        for _ in range(2):
            running.add(train_step(Arguments, accelerator, model, optimizer, scheduler, batch, 1.0, {"free_bits": 0.0}))
    averages = running.pop()
    assert len(averages) == 4 and all(value == value for value in averages) and running.count == 0


def test_a_run_padded_to_a_multiple_ends_with_the_weights_of_one_padded_to_the_longest(tmp_path):
    settings = {"config_overrides": f"{TINY},dropout=0.0,word_dropout=0.0", "max_train_steps": 4,
                "dataloader_drop_last": None, "logging_steps": 2}  # fmt: skip
    run(tmp_path, "longest", "--dataloader_drop_last", **settings)
    run(tmp_path, "bucketed", "--dataloader_drop_last", pad_to_multiple_of=8, **settings)
    longest = load_file(str(tmp_path / "longest" / "model.safetensors"))
    bucketed = load_file(str(tmp_path / "bucketed" / "model.safetensors"))
    for name, weight in longest.items():
        torch.testing.assert_close(bucketed[name], weight, rtol=1e-4, atol=1e-5, msg=name)
