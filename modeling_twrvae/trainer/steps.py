"""The pieces of the training loop (`loop.py`): the optimiser, the batches, one update (`train_step`), its log line
(`log_step`) and a validation that saves the best model (`validate`)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from accelerate.logging import get_logger
from torch.utils.data import DataLoader

from modeling_twrvae.data.length_grouping import LengthGroupedBatchSampler
from modeling_twrvae.trainer.output_folder import LOG_FILE, save_model

logger = get_logger(__name__)
FUSED_ADAM_DEVICES = ("cpu", "cuda")


class NonFiniteLossError(RuntimeError):
    pass


def build_optimizer(model, args, device: torch.device) -> torch.optim.Adam:
    """The papers' Adam. Its fused kernel updates all tensors in one pass (on a 2-core CPU about 8x faster than
    the per-tensor loop over the two 10k x 512 embedding tables), where the device has one."""
    return torch.optim.Adam(
        model.parameters(),
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        eps=args.adam_epsilon,
        weight_decay=args.weight_decay,
        fused=device.type in FUSED_ADAM_DEVICES or None,
    )


def compile_model(model, args) -> None:
    """`--torch_compile`: the model's forward compiled in place (`nn.Module.compile`, so its parameter names, state
    dict and saving are unchanged), with dynamic shapes: the length-grouped batches differ in length (and the last
    in size), which would otherwise recompile for each new shape."""
    if args.torch_compile:
        model.compile(dynamic=True)


def make_loader(
    dataset, batch_size: int, shuffle: bool, seed: int, collator, min_batch_size: int = 1, drop_last: bool = False
):
    sampler = LengthGroupedBatchSampler(
        dataset["length"],
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        min_batch_size=min_batch_size,
        drop_last=drop_last,
    )
    # A generator of its own: a DataLoader otherwise draws from the global RNG each time it starts an epoch, which
    # would shift the dropout and sampling noise of a resumed run.
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(
        dataset.remove_columns("length"), batch_sampler=sampler, collate_fn=collator, generator=generator
    )
    return loader, sampler


def min_train_batch_size(model) -> int:
    """2 for a model that batch-normalises its posterior mean (BN-VAE), whose training batch statistics need two
    sentences: its authors skip a batch of one (BN:text_anneal_fb.py:354-355), and so does train.py. 1 otherwise."""
    if getattr(model.config, "posterior_mean_batch_norm_gamma", None):
        return 2
    # DialogWAE's networks batch-normalise too (WAE:modules.py:158-165), and PyTorch refuses a training batch of one
    return 2 if any(isinstance(module, torch.nn.BatchNorm1d) for module in model.modules()) else 1


def loss_scale(args, accelerator, batch_size: int) -> float:
    """What turns the batch-averaged loss into the one to differentiate: 1, or the number of sentences that the
    update sums over. Processes' gradients are averaged and accumulated micro-batches divided by their count, so a
    sum over the whole update is this process's sum times both counts."""
    if args.loss_reduction == "mean":
        return 1.0
    return float(batch_size * accelerator.num_processes * args.gradient_accumulation_steps)


def train_step(
    args, accelerator, model, optimizer, lr_scheduler, batch, kl_weight: float, forward_kwargs: dict
) -> torch.Tensor:
    """One micro-batch forward and backward, and the optimiser update once the accumulated ones are complete.
    Returns this process's loss, reconstruction loss, KL regulariser and KL of the decoded latent as a tensor on the
    device: nothing in the step waits for the device (no `.item()`, no copy to the host, no collective), so that a
    GPU runs ahead; `RunningAverage` adds them up there and reads them when the run logs. `forward_kwargs` are the
    training options the task's model takes (`Task.forward_kwargs`)."""
    with accelerator.accumulate(model):
        output = model(**batch, kl_weight=kl_weight, return_logits=False, **forward_kwargs)
        accelerator.backward(output.loss * loss_scale(args, accelerator, batch["input_ids"].shape[0]))
        if accelerator.sync_gradients and args.max_grad_norm:
            accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
        optimizer.step()
        lr_scheduler.step()
        optimizer.zero_grad()
    return torch.stack([output.loss, output.reconstruction_loss, output.kl_regularizer, output.kl_decoded]).detach()


ADVERSARIAL_LOG_NAMES = ("loss", "autoencoder_loss", "generator_loss", "critic_loss")


def adversarial_step(
    args, accelerator, model, optimizers, lr_scheduler, batches: list[dict], options: dict
) -> torch.Tensor:
    """One round of DialogWAE's, iVAE's or SeqGAN's training (their `adversarial_update`, with the task's `options`
    for the round, `Task.round_options`). Returns what `ADVERSARIAL_LOG_NAMES` name, as `train_step` does its
    losses."""
    values = accelerator.unwrap_model(model).adversarial_update(
        batches, optimizers, max_grad_norm=args.max_grad_norm, critic_updates=args.critic_updates, **options
    )
    lr_scheduler.step()
    names = ADVERSARIAL_LOG_NAMES[1:]
    return torch.tensor([values["autoencoder_loss"], *(values[name] for name in names)], device=accelerator.device)


def check_finite(running, update: int, last_checkpoint: Path | None) -> None:
    """Stop a run whose losses since the last check hold NaN or infinity (they carry into the running sums): called
    where the run logs, validates or checkpoints, so that no checkpoint or best model holds a diverged update."""
    value = running.first_non_finite()
    if value is not None:
        first = running.checked_step + 1
        when = f"at update {update}" if first >= update else f"between updates {first} and {update}"
        raise NonFiniteLossError(
            f"The loss became {value} {when}. Last good checkpoint: {last_checkpoint or 'none yet'}. Resume from it "
            "with a lower --learning_rate, with --max_grad_norm, or without fp16."
        )
    running.checked_step = update


def log_line(path: Path, record: dict) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


LOG_NAMES = ("loss", "reconstruction_loss", "kl_regularizer", "kl_decoded")


def log_step(accelerator, output_dir: Path, progress, averages: list[float], *, step: int, epoch: float,
             kl_weight: float, learning_rate: float, names: tuple[str, ...] = LOG_NAMES) -> None:  # fmt: skip
    """Log the averages of the losses since the last logged step (named by `names`) to metrics.jsonl, the progress
    bar and the trackers."""
    record = {"step": step, "epoch": epoch, **dict(zip(names, averages, strict=True))}
    if names == LOG_NAMES:
        record.update(kl_weight=kl_weight)
        progress.set_postfix(rec=f"{averages[1]:.2f}", kl=f"{averages[3]:.2f}", refresh=False)
    else:
        progress.set_postfix(ae=f"{averages[1]:.2f}", critic=f"{averages[3]:.2f}", refresh=False)
    record["learning_rate"] = learning_rate
    if accelerator.is_main_process:
        log_line(output_dir / LOG_FILE, record)
    accelerator.log({f"train/{k}": v for k, v in record.items() if k != "step"}, step=step)


def validate(task, args, accelerator, model, eval_loader, tokenizer, output_dir: Path, state: dict) -> bool:
    """Measure the validation split (the task's metrics); a model better than the best so far is saved to
    --output_dir. Returns whether early stopping ends the run."""
    step = state["global_step"]
    metrics = task.evaluate(model, eval_loader, accelerator)
    value = metrics[args.metric_for_best_model]
    improved = state["best_metric"] is None or value < state["best_metric"]
    if improved:
        state.update(best_metric=value, best_step=step, evaluations_without_improvement=0)
        save_model(accelerator, model, tokenizer, output_dir, args, {"step": step, **metrics})
    else:
        state["evaluations_without_improvement"] += 1
    record = {"step": step, **{f"eval_{k}": v for k, v in metrics.items()}}
    if "elbo_nll" in metrics:
        said = (f"validation -ELBO {metrics['elbo_nll']:.3f} (reconstruction {metrics['reconstruction_loss']:.3f} + "
                f"KL {metrics['kl_decoded']:.3f})")  # fmt: skip
    else:
        said = f"validation reconstruction {metrics['reconstruction_loss']:.3f}"
    logger.info(f"step {step}: {said}" + (" - best so far, saved" if improved else ""))
    if accelerator.is_main_process:
        log_line(output_dir / LOG_FILE, record)
    accelerator.log({f"eval/{k}": v for k, v in metrics.items()}, step=step)
    patience = args.early_stopping_patience
    if patience and state["evaluations_without_improvement"] >= patience:
        logger.info(f"early stopping: {patience} validations without improvement")
        return True
    return False
