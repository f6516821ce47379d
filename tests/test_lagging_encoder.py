"""Aggressive training of the inference network (He et al., 2019; trainer/aggressive.py), and BN-VAE's smallest
training batch: each rule on a tiny model, and a resume in the middle of the aggressive phase."""

import json
from argparse import Namespace

import datasets
import pytest
import torch
from accelerate import Accelerator
from test_training import TINY, run, weights

from modeling_twrvae.data.length_grouping import LengthGroupedBatchSampler
from modeling_twrvae.trainer import aggressive
from modeling_twrvae.trainer.steps import make_loader, min_train_batch_size

from helpers import tiny_model

VOCAB = 40


def options(**changes):
    settings = dict(
        sample_posterior=False,
        free_bits=0.0,
        max_grad_norm=5.0,
        loss_reduction="mean",
        gradient_accumulation_steps=1,
        aggressive_max_sub_iter=100,
        aggressive_burn_interval=15,
    )
    settings.update(changes)
    return Namespace(**settings)


def random_batch(seed: int, rows: int = 6, length: int = 7) -> dict:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, VOCAB, (rows, length), generator=generator)
    ids[:, 0] = 1  # <bos>
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


class Draws:
    """Stands for `ExtraBatches`: the batches `draw` returns, in order (then the last one again)."""

    def __init__(self, batches):
        self.batches = list(batches)
        self.count = 0

    def draw(self):
        batch = self.batches[min(self.count, len(self.batches) - 1)]
        self.count += 1
        return batch


def snapshot(parameters):
    return [parameter.detach().clone() for parameter in parameters]


def per_token_loss(model, batch) -> float:
    with torch.no_grad():
        output = model(**batch, sample_posterior=False, reduction="none", return_logits=False)
    return float(output.loss.sum()) / int((batch["attention_mask"].sum(1) - 1).sum())


def test_the_inner_loop_updates_the_encoder_only_and_the_outer_step_the_decoder_only():
    model = tiny_model("vae-lstm", VOCAB, dropout=0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    encoder, decoder = aggressive.part_parameters(model)
    assert encoder and decoder and {id(p) for p in encoder}.isdisjoint(id(p) for p in decoder)
    assert len(encoder) + len(decoder) == len([p for p in model.parameters() if p.requires_grad])
    accelerator = Accelerator(cpu=True)
    draws = Draws(random_batch(seed) for seed in range(1, 200))
    encoder_before, decoder_before = snapshot(encoder), snapshot(decoder)

    updates = aggressive.encoder_updates(options(), accelerator, model, optimizer, random_batch(0), 1.0, draws)

    assert 30 <= updates <= 99 and (updates % 15 == 0 or updates == 99)
    assert draws.count == updates  # a fresh batch after each update (the first update is on the outer batch)
    assert all(torch.equal(a, b) for a, b in zip(decoder_before, decoder, strict=True))  # the decoder did not move
    assert all(optimizer.state.get(p, {}) == {} for p in decoder)  # nor did its Adam moments start
    assert sum(not torch.equal(a, b) for a, b in zip(encoder_before, encoder, strict=True)) == len(encoder)

    # the outer update: the inner loop again, then the decoder alone on the outer batch
    draws = Draws(random_batch(seed) for seed in range(300, 500))
    values, updates = aggressive.aggressive_step(
        options(aggressive_max_sub_iter=1), accelerator, model, optimizer, scheduler, random_batch(0), 1.0, draws
    )
    assert updates == 0 and values.shape == (4,) and torch.isfinite(values).all()
    assert sum(not torch.equal(a, b) for a, b in zip(decoder_before, decoder, strict=True)) == len(decoder)
    encoder_after_inner = snapshot(encoder)
    aggressive.aggressive_step(
        options(aggressive_max_sub_iter=1), accelerator, model, optimizer, scheduler, random_batch(0), 1.0, draws
    )
    assert all(
        torch.equal(a, b) for a, b in zip(encoder_after_inner, encoder, strict=True)
    )  # the decoder update leaves it


def test_the_stopping_rule_is_the_authors_window_comparison():
    def updates_until_stop(window_losses, max_sub_iter=100, interval=15):
        rule, count = aggressive.InnerLoopStop(max_sub_iter, interval), 0
        while rule.running():
            count += 1
            if rule.record(window_losses[(count - 1) // interval] * 10, 10):  # per-token loss of that window
                break
        return count

    assert updates_until_stop([5.0, 4.0, 3.0, 3.5, 1.0, 1.0, 1.0]) == 60  # the 4th window is worse than the 3rd
    assert updates_until_stop([50.0, 1.0, 2.0]) == 45  # the first window is compared with 1e4: it does not stop
    assert updates_until_stop([2e4, 1.0]) == 15  # (unless its per-token loss is above 1e4, as in the authors' code)
    assert updates_until_stop([2.0] * 7) == 99  # never worse (equal is not worse): the authors' limit
    assert updates_until_stop([2.0] * 8, max_sub_iter=40, interval=5) == 39


def test_the_inner_loop_stops_when_a_window_of_updates_is_worse_than_the_previous_one():
    # learning rate 0: each window's loss is that of its batches, so the windows can be made better or worse
    model = tiny_model("vae-lstm", VOCAB, dropout=0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.0)
    model.eval()  # no dropout: the losses are exact functions of the batches
    first, second = random_batch(1), random_batch(2, length=5)
    high, low = sorted([first, second], key=lambda b: per_token_loss(model, b), reverse=True)
    assert per_token_loss(model, high) > per_token_loss(model, low)
    draws = Draws([high] * 14 + [low] * 15 + [high] * 100)  # windows: high, low (better), high (worse): stop
    accelerator = Accelerator(cpu=True)
    assert aggressive.encoder_updates(options(), accelerator, model, optimizer, high, 1.0, draws) == 45
    draws = Draws([high] * 200)  # every window equal: the authors' limit of 99 updates
    assert aggressive.encoder_updates(options(), accelerator, model, optimizer, high, 1.0, draws) == 99


AGGRESSIVE = {
    "aggressive": "true",
    "aggressive_max_sub_iter": 31,  # 30 encoder updates at most, windows of 10: quick, and the rule still runs
    "aggressive_burn_interval": 10,
    "max_grad_norm": 5.0,
}


def log_records(folder):
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def test_the_aggressive_phase_ends_at_the_first_epoch_whose_validation_mi_falls(tmp_path, monkeypatch):
    values = iter([0.5, 0.7, 0.6, 0.9, 1.0])
    monkeypatch.setattr(aggressive, "validation_mutual_information", lambda *args: next(values))
    # 80 training texts in batches of 16: 5 updates an epoch, 3 epochs and a bit
    run(tmp_path, "run", max_train_steps=16, checkpointing_steps=8, save_total_limit=5, **AGGRESSIVE)
    records = [r for r in log_records(tmp_path / "run") if "aggressive_mi" in r]
    assert [(r["step"], r["aggressive_mi"], r["aggressive"]) for r in records] == [
        (5, 0.5, True),
        (10, 0.7, True),
        (15, 0.6, False),  # lower than the epoch before: the phase ends, and MI is not measured for it again
    ]
    assert records[0]["aggressive_encoder_updates"] >= 4 * 20  # each update had at least two windows of 10
    final = json.loads((tmp_path / "run" / "checkpoint-16" / "trainer_state.json").read_text())
    assert final["aggressive"] is False and final["aggressive_mi"] == 0.6
    assert final["aggressive_encoder_updates"] == records[-1]["aggressive_encoder_updates"]  # none after the phase
    assert final["aggressive_generator"]  # the extra batches' generator, for a resume


def test_a_run_resumed_in_the_aggressive_phase_ends_as_the_uninterrupted_one(tmp_path):
    settings = {
        "max_train_steps": 6,
        "checkpointing_steps": 3,
        "save_total_limit": 5,
        "config_overrides": TINY + ",dropout=0.3,word_dropout=0.2",
        **AGGRESSIVE,
    }
    run(tmp_path, "whole", **settings)
    whole = tmp_path / "whole"
    middle = json.loads((whole / "checkpoint-3" / "trainer_state.json").read_text())
    assert middle["aggressive"] is True and middle["aggressive_encoder_updates"] >= 3 * 20

    interrupted = tmp_path / "interrupted"
    interrupted.mkdir()
    (interrupted / "checkpoint-3").symlink_to(whole / "checkpoint-3", target_is_directory=True)
    run(tmp_path, "interrupted", resume_from_checkpoint="latest", **settings)

    final_whole, final_resumed = weights(whole / "checkpoint-6"), weights(interrupted / "checkpoint-6")
    assert final_whole.keys() == final_resumed.keys()
    for key in final_whole:
        assert torch.equal(final_whole[key], final_resumed[key]), key
    states = [
        json.loads((folder / "checkpoint-6" / "trainer_state.json").read_text()) for folder in (whole, interrupted)
    ]
    for key in aggressive.STATE_KEYS:
        assert states[0][key] == states[1][key], key
    mi = [r for r in log_records(interrupted) if "aggressive_mi" in r]
    assert [r["step"] for r in mi] == [5] and mi == [r for r in log_records(whole) if "aggressive_mi" in r]


def test_bn_vae_trains_on_no_batch_of_one_sentence():
    sampler = LengthGroupedBatchSampler([5] * 33, batch_size=16, seed=0, min_batch_size=2)
    assert sorted(len(b) for b in sampler.batches()) == [16, 16] and len(sampler) == 2
    unshuffled = LengthGroupedBatchSampler([5] * 34, batch_size=16, shuffle=False, min_batch_size=2)
    assert sorted(len(b) for b in unshuffled.batches()) == [2, 16, 16] and len(unshuffled) == 3
    assert len(LengthGroupedBatchSampler([5] * 33, batch_size=16)) == 3  # other models keep it

    assert min_train_batch_size(tiny_model("bn-vae", VOCAB)) == 2
    assert min_train_batch_size(tiny_model("vae-lstm", VOCAB)) == 1
    rows = datasets.Dataset.from_dict({"input_ids": [[1, 5, 6, 2]] * 17, "length": [4] * 17})

    def collate(features):
        ids = torch.tensor([f["input_ids"] for f in features])
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    loader, _ = make_loader(rows, 8, True, 0, collate, min_train_batch_size(tiny_model("bn-vae", VOCAB)))
    sizes = [len(batch["input_ids"]) for batch in loader]
    assert sizes == [8, 8] and len(loader) == 2


@pytest.mark.parametrize("name", ["ptb/cyclical-vae", "e2e/cyclical-vae"])
def test_the_cyclical_vae_config_follows_fu_et_al(name, tmp_path):
    from modeling_twrvae.trainer.arguments import parse_args_and_task
    from modeling_twrvae.trainer.kl_schedules import KLSchedule

    args, _ = parse_args_and_task(["--config", name, "--output_dir", str(tmp_path)])
    assert (args.kl_schedule, args.kl_cycles, args.kl_cycle_ratio, args.kl_start_weight) == ("cyclical", 4, 0.45, 0.1)
    assert (args.lr_scheduler_type, args.lr_scheduler_cycles, args.num_train_epochs) == ("cosine_with_restarts", 4, 40)
    schedule = KLSchedule("cyclical", 1.0, total_steps=400, cycles=4, ratio=args.kl_cycle_ratio, start_weight=0.1)
    assert schedule(0) == pytest.approx(0.1) and schedule(100) == pytest.approx(0.1)  # each cycle restarts at 0.1
    assert schedule(20) == pytest.approx(0.1 + 0.9 * 20 / 45) and schedule(45) == pytest.approx(1.0)
