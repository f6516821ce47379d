"""train.py's training loop, `train`: the task's data and model, the optimiser and the schedules, a resumed or a fresh
state, then one pass of updates that logs, validates (saving the best model) and checkpoints. The pieces it calls are
in `steps.py` (one update, a log line, a validation), `checkpointing.py` and `aggressive.py`; `commands/train.py`
parses the arguments, builds the `Accelerator` and locks the output folder before calling it."""

from __future__ import annotations

import math
from pathlib import Path

from accelerate.logging import get_logger
from accelerate.utils import set_seed
from tqdm.auto import tqdm
from transformers import get_scheduler

from modeling_twrvae import check_tokenizer
from modeling_twrvae.checkpoint_checks import FINGERPRINT_KEY, vocabulary_fingerprint
from modeling_twrvae.trainer import aggressive
from modeling_twrvae.trainer.checkpointing import (
    RunningAverage,
    check_resume_data,
    check_resume_settings,
    data_fingerprint,
    read_checkpoint,
    resolve_checkpoint,
    resume,
    run_settings,
    save_checkpoint,
)
from modeling_twrvae.trainer.kl_schedules import KLSchedule
from modeling_twrvae.trainer.output_folder import (
    CURVES_FILE,
    LOG_FILE,
    TRACKER_PROJECT,
    fit_aggregate_posterior,
    plain_settings,
)
from modeling_twrvae.trainer.plots import plot_training_curves
from modeling_twrvae.trainer.steps import (
    ADVERSARIAL_LOG_NAMES,
    LOG_NAMES,
    adversarial_step,
    build_optimizer,
    check_finite,
    compile_model,
    log_line,
    log_step,
    make_loader,
    min_train_batch_size,
    train_step,
    validate,
)
from modeling_twrvae.trainer.tasks import CheckedCollator, get_tokenizer

logger = get_logger(__name__)
__all__ = ["train"]


def train(args, task, accelerator, output_dir: Path, use: str | None) -> dict:
    """The training run in its locked `output_dir`: the task's data and model, the optimiser and schedules, a resume
    from `--resume_from_checkpoint`, then updates with logging, validation (which saves the best model) and
    checkpoints until `max_train_steps` or early stopping. `use` is what `claim_output_dir` found in the folder."""
    set_seed(args.seed)
    processes = accelerator.num_processes
    checkpoint = resolve_checkpoint(args.resume_from_checkpoint, output_dir) if args.resume_from_checkpoint else None
    resumed_state = read_checkpoint(checkpoint, output_dir, processes) if checkpoint else None
    changed = check_resume_settings(resumed_state, args, processes, checkpoint) if checkpoint else {}

    # The data, its tokenizer and batches, and the model: the task's.
    raw = task.load_splits()
    data = data_fingerprint(raw)
    tokenizer = get_tokenizer(args, task.tokenizer_texts(raw["train"]), checkpoint)
    train_data, truncated = task.tokenize(raw["train"], tokenizer, args.max_length, "training")
    eval_data, _ = task.tokenize(raw["validation"], tokenizer, args.max_length, "validation")
    model = task.build_model(tokenizer)
    check_tokenizer(tokenizer, model.config)
    # saved with the model, so that loading refuses a tokenizer of the same size with other word ids
    setattr(model.config, FINGERPRINT_KEY, vocabulary_fingerprint(tokenizer.get_vocab()))
    collator = task.collator(tokenizer)
    smallest = min_train_batch_size(model)  # BN-VAE: no batch of 1 (trainer/steps.py)
    train_loader, train_sampler = make_loader(
        train_data, args.per_device_train_batch_size * processes, True, args.seed, collator, smallest,
        drop_last=args.dataloader_drop_last,
    )  # fmt: skip
    eval_loader, _ = make_loader(eval_data, args.per_device_eval_batch_size * processes, False, args.seed, collator)

    # The optimiser and the schedules of the learning rate and of the KL weight. DialogWAE, iVAE and SeqGAN have three
    # optimisers each, and an update is a round of their updates on `batches_per_round` batches (trainer/steps.py,
    # adversarial_step; SeqGAN's phase comes from the task's `round_options`).
    compile_model(model, args)
    if task.adversarial:
        if processes > 1:
            raise ValueError(
                f"{type(model).__name__} trains on one process only: run train.py without accelerate launch/torchrun."
            )
        optimizers = task.adversarial_optimizers(model)
        optimizer, batches_per_update = optimizers[0], model.batches_per_round(args.critic_updates)
    else:
        optimizer, batches_per_update = (
            build_optimizer(model, args, accelerator.device),
            args.gradient_accumulation_steps,
        )
    updates_per_epoch = math.ceil(len(train_loader) / batches_per_update)
    max_train_steps = args.max_train_steps or args.num_train_epochs * updates_per_epoch
    num_epochs = math.ceil(max_train_steps / updates_per_epoch)
    if checkpoint is not None:
        check_resume_data(resumed_state, data, max_train_steps, args, checkpoint)
    lr_scheduler = get_scheduler(
        args.lr_scheduler_type,
        optimizer,
        num_warmup_steps=args.num_warmup_steps,
        num_training_steps=max_train_steps,
        scheduler_specific_kwargs={"num_cycles": args.lr_scheduler_cycles} if args.lr_scheduler_cycles else None,
    )
    kl_schedule = KLSchedule(
        args.kl_schedule,
        args.kl_weight,
        args.kl_anneal_steps,
        max_train_steps,
        args.kl_cycles,
        args.kl_cycle_ratio,
        args.kl_start_weight,
    )
    if task.adversarial:  # all three prepared, so that checkpoints hold and restore all three
        model, optimizer, *others, train_loader, eval_loader, lr_scheduler = accelerator.prepare(
            model, optimizer, *optimizers[1:], train_loader, eval_loader, lr_scheduler
        )
        optimizers = (optimizer, *others)
    else:
        model, optimizer, train_loader, eval_loader, lr_scheduler = accelerator.prepare(
            model, optimizer, train_loader, eval_loader, lr_scheduler
        )
    if accelerator.is_main_process and args.report_to != "none":
        # trackers take flat scalars: nested settings become "config_overrides.hidden_size" and the like
        flat = {}
        for key, value in plain_settings(vars(args)).items():
            items = value.items() if isinstance(value, dict) else [(None, value)]
            flat.update({f"{key}.{inner}" if inner else key: v for inner, v in items if v is not None})
        accelerator.init_trackers(TRACKER_PROJECT, config=flat)

    # A fresh run, or the checkpoint's, continued exactly (trainer/checkpointing.py).
    state = {"global_step": 0, "best_metric": None, "best_step": None, "evaluations_without_improvement": 0}
    if args.aggressive:
        state.update(aggressive.initial_state(args))
    last_checkpoint = None
    if checkpoint is not None:
        state, last_checkpoint = resumed_state, checkpoint
        resume(accelerator, checkpoint, output_dir, state, use, changed, optimizer, lr_scheduler, args.learning_rate)
    extra = None  # the lagging encoder's extra batches (trainer/aggressive.py), their generator as the checkpoint's
    if args.aggressive:
        if processes > 1:
            raise ValueError("--aggressive runs on one process only.")
        extra = aggressive.ExtraBatches(
            train_data.remove_columns("length"), train_data["length"], args.per_device_train_batch_size,
            args.seed, collator, accelerator.device, smallest,
        )  # fmt: skip
        extra.load_state(state)
    if isinstance(collator, CheckedCollator):  # its batches are checked on the host: the device step reads nothing
        accelerator.unwrap_model(model).inputs_checked_by_caller = True
        # padded to a few lengths: the loss keeps the shapes too (every position through the output layer)
        accelerator.unwrap_model(model).static_shapes = bool(args.pad_to_multiple_of)
    forward_kwargs = task.forward_kwargs()  # the training options this model family takes
    # the losses since the last logged step, summed on the device and averaged over processes when read
    running = RunningAverage(state, gather=accelerator.gather)
    # what the run is: a resume is checked against it (check_resume_settings, check_resume_data)
    state.update(settings=run_settings(args, processes), data_sha256=data, total_steps=max_train_steps)

    logger.info(
        f"{len(train_data)} training / {len(eval_data)} validation texts, vocabulary {len(tokenizer)}, "
        f"{accelerator.unwrap_model(model).num_parameters():,} parameters, {processes} process(es), "
        f"{max_train_steps} updates ({num_epochs} epochs of {updates_per_epoch})"
    )
    progress = tqdm(
        total=max_train_steps,
        initial=state["global_step"],
        disable=not accelerator.is_local_main_process,
        desc="training",
    )
    stop = state["global_step"] >= max_train_steps
    start_epoch = state["global_step"] // updates_per_epoch
    skip_batches = (state["global_step"] % updates_per_epoch) * batches_per_update
    model.train()
    try:
        for epoch in range(start_epoch, num_epochs):
            if stop:
                break
            # accelerate's loaders call set_epoch(their own iteration count) when iterated: set that count too, or a
            # resumed run would replay epoch 0's order.
            train_loader.set_epoch(epoch)
            train_sampler.set_epoch(epoch)
            loader = train_loader
            if epoch == start_epoch and skip_batches:
                loader = accelerator.skip_first_batches(train_loader, skip_batches)
            pending = []  # DialogWAE, iVAE, SeqGAN: the batches of the round being gathered
            for index, batch in enumerate(loader):
                kl_weight = kl_schedule(state["global_step"])
                if task.adversarial:
                    pending.append(batch)
                    if len(pending) < batches_per_update and index + 1 < len(loader):
                        continue
                    options = task.round_options(state["global_step"])
                    values = adversarial_step(args, accelerator, model, optimizers, lr_scheduler, pending, options)
                    pending = []
                elif extra is not None and state["aggressive"]:
                    values, updates = aggressive.aggressive_step(
                        args, accelerator, model, optimizer, lr_scheduler, batch, kl_weight, extra
                    )
                    state["aggressive_encoder_updates"] += updates
                else:
                    values = train_step(
                        args, accelerator, model, optimizer, lr_scheduler, batch, kl_weight, forward_kwargs
                    )
                running.add(values)
                if not accelerator.sync_gradients:
                    continue  # the update is not complete until the accumulated micro-batches are
                state["global_step"] += 1
                step = state["global_step"]
                progress.update(1)
                end_of_epoch = step % updates_per_epoch == 0
                logging = step % args.logging_steps == 0 or step == max_train_steps
                validating = bool(
                    (args.eval_steps and step % args.eval_steps == 0)
                    or (not args.eval_steps and end_of_epoch)
                    or step == max_train_steps
                )
                checkpointing = bool(args.checkpointing_steps) and (
                    step % args.checkpointing_steps == 0 or step == max_train_steps
                )
                if logging or validating or checkpointing:  # reads the device: only where the run reports or saves
                    check_finite(running, step, last_checkpoint)
                if logging:
                    log_step(
                        accelerator, output_dir, progress, running.pop(), step=step,
                        epoch=round(step / updates_per_epoch, 4), kl_weight=kl_weight,
                        learning_rate=lr_scheduler.get_last_lr()[0],
                        names=ADVERSARIAL_LOG_NAMES if task.adversarial else LOG_NAMES,
                    )  # fmt: skip
                if validating:
                    stop = validate(task, args, accelerator, model, eval_loader, tokenizer, output_dir, state)
                if extra is not None and state["aggressive"] and end_of_epoch:
                    mi = aggressive.end_of_epoch(model, eval_loader, accelerator, args.seed, state)
                    if accelerator.is_main_process:
                        log_line(output_dir / LOG_FILE, {
                            "step": step, "aggressive_mi": mi, "aggressive": state["aggressive"],
                            "aggressive_encoder_updates": state["aggressive_encoder_updates"],
                        })  # fmt: skip
                if checkpointing or (args.checkpointing_steps and stop):
                    # the sums of the next logged average: a resume continues them, as if the run had never stopped
                    state.update(running.state())
                    if extra is not None:
                        state.update(extra.state())
                    last_checkpoint = save_checkpoint(
                        accelerator, output_dir, step, state, args.save_total_limit, tokenizer
                    )
                if stop or step >= max_train_steps:
                    stop = True
                    break
    finally:
        progress.close()
    if args.aggregate_posterior_components and accelerator.is_main_process:
        fit_aggregate_posterior(output_dir, task.tokenizer_texts(raw["train"]), tokenizer, args, accelerator.device)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        plot_training_curves(output_dir / LOG_FILE, output_dir / CURVES_FILE)
    accelerator.end_training()
    return {
        "global_step": state["global_step"],
        "best_step": state["best_step"],
        "best_metric": state["best_metric"],
        "truncated_training_texts": truncated,
    }
