"""train.py's checkpoints, and what makes a resume from one continue the run exactly.

`accelerator.save_state` checkpoints go to `--output_dir/checkpoint-STEP`, written in a temporary folder and renamed
into place (`trainer_state.json`, written last, marks one complete). Each keeps the run's tokenizer, the running
average of the losses since the last logged step, and the best model of its time (`best_model/`, hard links), so that
a resume from it, or a rewind to it, restores the best model and `eval_results.json` of that point of the run. A
checkpoint that cannot be resumed exactly (a missing or damaged random-number state, say), or a resume with settings
or data that would make another run, is refused with a message that names what to do instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import torch
from accelerate.logging import get_logger

from modeling_twrvae.file_utils import (
    atomic_write_json,
    atomic_write_text,
    disk_full_error,
    fsync_folder,
    move_files_into,
    weights_fingerprint,
)
from modeling_twrvae.trainer.errors import brief
from modeling_twrvae.trainer.output_folder import (
    CHECKPOINT_PATTERN,
    EVAL_RESULTS,
    LOG_FILE,
    RESUME_ADVICE,
    TRAINER_STATE,
    WEIGHTS_KEY,
    list_checkpoints,
    model_files_in,
    plain_settings,
    remove_results,
    without_checkpoint,
    write_marker,
)

logger = get_logger(__name__)
CHECKPOINT_TOKENIZER = "tokenizer"  # the tokenizer the run trained, saved in every checkpoint and reused on resume
RNG_STATE = "random_states_{}.pkl"  # accelerate's name for process i's RNG states
RNG_KEYS = ("random_state", "numpy_random_seed", "torch_manual_seed")
BEST_MODEL_COPY = "best_model"  # in each checkpoint: the best model so far (hard links to the saved one)


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be resumed exactly: the message names it and the one to use instead."""


def resolve_checkpoint(value: str, output_dir: Path) -> Path:
    if value == "latest":
        checkpoints = list_checkpoints(output_dir)
        if not checkpoints:
            raise FileNotFoundError(
                f"--resume_from_checkpoint latest: no complete checkpoint in {output_dir}. {without_checkpoint(output_dir)}"
            )
        return checkpoints[-1][1]
    path = Path(value)
    if not (path / TRAINER_STATE).is_file():
        raise FileNotFoundError(f"{path} is not a complete checkpoint (no {TRAINER_STATE}); pick another or `latest`.")
    return path


def _previous_checkpoint(checkpoint: Path, output_dir: Path) -> str:
    earlier = [
        path
        for step, path in list_checkpoints(output_dir)
        if path.resolve() != checkpoint.resolve() and step < _checkpoint_step(checkpoint)
    ]
    if earlier:
        return f"Resume from the previous one instead: --resume_from_checkpoint {earlier[-1]}"
    return "There is no earlier checkpoint. " + without_checkpoint(output_dir).removesuffix(".")


def _checkpoint_step(checkpoint: Path) -> int:
    match = CHECKPOINT_PATTERN.match(checkpoint.name)
    return int(match.group(1)) if match else 1 << 62


def read_checkpoint(checkpoint: Path, output_dir: Path, num_processes: int) -> dict:
    """The trainer state of `checkpoint`, after checking that what an exact resume needs is there and readable."""
    from accelerate.utils import load as accelerate_load

    def broken(what: str) -> CheckpointError:
        return CheckpointError(
            f"Checkpoint {checkpoint} cannot be resumed exactly: {what}. {_previous_checkpoint(checkpoint, output_dir)}."
        )

    try:
        state = json.loads((checkpoint / TRAINER_STATE).read_text(encoding="utf-8"))
        int(state["global_step"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise broken(f"{TRAINER_STATE} is unreadable ({error})") from error
    saved_processes = len(list(checkpoint.glob(RNG_STATE.format("*"))))
    for index in range(num_processes):
        rng_file = checkpoint / RNG_STATE.format(index)
        if not rng_file.is_file() and 0 < saved_processes <= index:
            # saved by fewer processes (the total batch is checked with the settings): this process starts its random
            # numbers afresh from --seed, so the resumed run cannot repeat the draws of an uninterrupted one
            logger.warning(
                f"{checkpoint} was saved by {saved_processes} process(es) and is resumed by {num_processes}: process "
                f"{index} has no saved random-number state and starts from --seed; the run's later dropout and "
                "sampling draws differ from an uninterrupted run's"
            )
            continue
        if not rng_file.is_file():
            raise broken(
                f"its random-number state {rng_file.name} is missing (the resumed run would not repeat the "
                "uninterrupted run's dropout and sampling)"
            )
        try:
            rng = accelerate_load(rng_file)
            missing = [key for key in RNG_KEYS if key not in rng]
        except Exception as error:  # a damaged pickle raises whatever its bytes lead to
            raise broken(f"its random-number state {rng_file.name} is corrupt ({brief(error)})") from error
        if missing:
            raise broken(f"its random-number state {rng_file.name} lacks {missing}")
    return state


def load_checkpoint(accelerator, checkpoint: Path, output_dir: Path) -> None:
    try:
        accelerator.load_state(str(checkpoint))
    except Exception as error:  # a torn or damaged file raises whatever torch or safetensors meet
        raise CheckpointError(
            f"Checkpoint {checkpoint} could not be loaded ({brief(error)}). It is damaged or was "
            f"written by another setting. {_previous_checkpoint(checkpoint, output_dir)}."
        ) from error


def resume(accelerator, checkpoint: Path, output_dir: Path, state: dict, use: str | None, changed: dict,
           optimizer, lr_scheduler, learning_rate: float) -> None:  # fmt: skip
    """Load `checkpoint` into the prepared objects and make the folder the run's as it was at the checkpoint's step
    (on a rewind: no later checkpoints or log lines, the best model of that time); `state` is the checkpoint's, and
    records the settings the resume changed (`changed`, from `check_resume_settings`)."""
    load_checkpoint(accelerator, checkpoint, output_dir)
    if accelerator.is_main_process:
        if use == "continue":
            remove_later_checkpoints(output_dir, state["global_step"])
            truncate_log(output_dir / LOG_FILE, state["global_step"])
        else:
            logger.warning(
                f"continuing the run of {checkpoint} (step {state['global_step']}) in the new folder {output_dir}: "
                f"its metrics.jsonl starts at step {state['global_step'] + 1}; {checkpoint.parent}'s log and "
                "checkpoints stay there and are not copied"
            )
        restore_best_model(checkpoint, output_dir, state)
    accelerator.wait_for_everyone()
    set_learning_rate(optimizer, lr_scheduler, learning_rate)
    logger.info(f"resumed from {checkpoint} at step {state['global_step']}")
    if changed:
        logger.info(f"settings changed on resume: {changed}")
        state.setdefault("resumes", []).append(
            {"step": state["global_step"], "checkpoint": str(checkpoint), "changed": changed}
        )


def remove_later_checkpoints(output_dir: Path, step: int) -> None:
    """Resuming from step N abandons what came after it: later checkpoints would otherwise be taken for this run's
    by `--resume_from_checkpoint latest` (and their steps mixed into metrics.jsonl)."""
    for later_step, path in list_checkpoints(output_dir):
        if later_step > step and foreign_entries(path):
            raise CheckpointError(
                f"resuming from step {step} would delete {path}, a later checkpoint, but it holds "
                f"{', '.join(p.name for p in foreign_entries(path))}, which train.py did not write: move them out first."
            )
        if later_step > step:
            logger.warning(f"removing {path}: it continues the run past step {step}, which this resume replaces")
            shutil.rmtree(path)


def unshare_flattened_weights(models, weights, output_dir) -> None:
    """accelerate's `save_state` hook: give every tensor of the state dicts a storage of its own.

    On a GPU, cuDNN packs each RNN's weights and biases into one buffer, and accelerate's safetensors writer takes
    tensors that share a storage for tied copies and keeps only the first: checkpoints lost all but `weight_ih_l0`
    of every LSTM (seen on an H200). Copying the tensors that share a storage keeps them all."""
    for state_dict in weights:
        seen = set()
        for name, tensor in state_dict.items():
            if not isinstance(tensor, torch.Tensor):
                continue
            storage = (tensor.device, tensor.untyped_storage().data_ptr())
            if storage in seen:
                state_dict[name] = tensor.clone()
            seen.add(storage)


def save_checkpoint(accelerator, output_dir: Path, step: int, state: dict, limit: int | None, tokenizer) -> Path:
    final = output_dir / f"checkpoint-{step}"
    temporary = output_dir / f".checkpoint-{step}.tmp"
    if accelerator.is_main_process and temporary.exists():
        shutil.rmtree(temporary)
    accelerator.wait_for_everyone()
    try:
        accelerator.save_state(str(temporary))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            tokenizer.save_pretrained(temporary / CHECKPOINT_TOKENIZER)
            if state.get("best_step") is not None:  # a resume from here restores it (restore_best_model)
                best = [p.name for p in model_files_in(output_dir)]
                link_or_copy_files(output_dir, temporary / BEST_MODEL_COPY, best)
            for path in temporary.rglob("*"):
                if path.is_file():
                    with open(path, "rb") as handle:
                        os.fsync(handle.fileno())
            atomic_write_json(temporary / TRAINER_STATE, state)  # written last: it marks the checkpoint complete
            if final.exists():
                shutil.rmtree(final)
            os.replace(temporary, final)
            fsync_folder(output_dir)
            if limit:
                for _, old in list_checkpoints(output_dir)[:-limit]:
                    remove_checkpoint(old)
    except Exception as error:  # torch's zip writer reports a full disk as a RuntimeError ("unexpected pos")
        raise disk_full_error(error, temporary, RESUME_ADVICE) from error
    accelerator.wait_for_everyone()
    return final


def foreign_entries(checkpoint: Path) -> list[Path]:
    """What a checkpoint holds that train.py and accelerate did not write there (a folder someone made inside it,
    say): rotation keeps such a checkpoint rather than delete it with them."""
    ours = {CHECKPOINT_TOKENIZER, BEST_MODEL_COPY}
    return sorted(p for p in checkpoint.iterdir() if (p.is_dir() or p.is_symlink()) and p.name not in ours)


def remove_checkpoint(checkpoint: Path) -> None:
    foreign = foreign_entries(checkpoint)
    if foreign:
        logger.warning(
            f"kept {checkpoint} past --save_total_limit: it holds {', '.join(p.name for p in foreign)}, which train.py "
            "did not write; move them out and delete the checkpoint yourself"
        )
        return
    shutil.rmtree(checkpoint, ignore_errors=True)


def link_or_copy_files(source: Path, target: Path, names) -> None:
    """Put the files `names` of `source` into the new folder `target`: hard links (no space, and the saved files
    are only ever replaced by a rename, never written in place), or copies where the disk has no hard links."""
    target.mkdir(parents=True)
    for name in names:
        try:
            os.link(source / name, target / name)
        except OSError:
            shutil.copy2(source / name, target / name)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def restore_best_model(checkpoint: Path, output_dir: Path, state: dict) -> None:
    """After a resume, make --output_dir's best model (and eval_results.json) the best of the run up to the
    checkpoint's step: a model saved after that step belongs to the continuation that the resume abandons. Each
    checkpoint keeps the best model of its time in `best_model/`."""
    step = state["global_step"]
    saved = _read_json(output_dir / EVAL_RESULTS)
    copy = checkpoint / BEST_MODEL_COPY
    if state.get("best_step") is None or not copy.is_dir():
        if not (isinstance(saved, dict) and isinstance(saved.get("step"), int) and saved["step"] > step):
            return
        for path in model_files_in(output_dir):
            path.unlink()
        write_marker(output_dir, model_files=[])
        remove_results(output_dir, "was removed")
        if state.get("best_step") is None:
            logger.warning(
                f"removed the best model of step {saved['step']} from {output_dir}: it was saved after step {step}, "
                "which this resume continues from; the next validation saves the best model again"
            )
        else:  # a checkpoint of an earlier version of train.py: it has no copy of the best model of its time
            logger.warning(
                f"removed the best model of step {saved['step']} from {output_dir}: it was saved after step {step}, "
                f"and {checkpoint} (an older checkpoint) has no copy of the best model of step {state['best_step']}; "
                f"a model is saved again when a validation beats -ELBO {state['best_metric']:.3f}"
            )
        return
    wanted = _read_json(copy / EVAL_RESULTS)
    if saved == wanted and isinstance(saved, dict) and saved.get(WEIGHTS_KEY) == weights_fingerprint(output_dir):
        return
    temporary = output_dir / ".best.tmp"
    if temporary.exists():
        shutil.rmtree(temporary)
    names = sorted(p.name for p in copy.iterdir() if p.is_file())
    link_or_copy_files(copy, temporary, names)
    old = [p for p in model_files_in(output_dir) if p.name not in names]
    write_marker(output_dir, model_files=names)
    move_files_into(temporary, output_dir, last=(EVAL_RESULTS,))
    for path in old:
        path.unlink(missing_ok=True)
    remove_results(output_dir, "was replaced")
    logger.info(
        f"restored the best model of step {state['best_step']} from {copy} into {output_dir}"
        + (
            f" (the one there was saved at step {saved.get('step')}, after the checkpoint)"
            if isinstance(saved, dict)
            else ""
        )
    )


def truncate_log(path: Path, step: int) -> None:
    """On resume, drop what the interrupted run logged after the checkpoint, so no step is logged twice. A torn last
    line (the run was killed while writing it) is dropped; a damaged line elsewhere is an error."""
    if not path.is_file():
        return
    lines = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    kept = []
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
            record_step = int(record["step"])
        except (ValueError, KeyError, TypeError) as error:
            if number == len(lines):
                logger.warning(f"{path}: dropping its torn last line ({line[:60]!r})")
                continue
            raise ValueError(
                f"{path}, line {number}, is not a metrics record ({error}): {line[:80]!r}. Remove or repair that line, "
                "then resume again."
            ) from error
        if record_step <= step:
            kept.append(line)
    atomic_write_text(path, "".join(line + "\n" for line in kept))


class RunningAverage:
    """The sums of the losses since the last logged step, and their count, kept on the device where the losses are
    (adding them up needs no copy to the host). `pop` and `state` read them, averaged over processes (`gather`, a
    collective that every process calls); a checkpoint keeps them, so that a resume continues the next logged
    average as if the run had never stopped."""

    def __init__(self, state: dict | None = None, gather=None):
        self.gather = gather or (lambda tensor: tensor)
        self.sums = torch.zeros(4, dtype=torch.float64)
        self.count = 0
        self.checked_step = int((state or {}).get("global_step", 0))
        if state and "running_sums" in state:
            self.sums = torch.tensor(state["running_sums"], dtype=torch.float64)
            self.count = int(state["running_count"])

    def add(self, values: torch.Tensor) -> None:
        dtype = torch.float32 if values.device.type == "mps" else torch.float64  # MPS has no float64
        self.sums = self.sums.to(device=values.device, dtype=dtype) + values.to(dtype)
        self.count += 1

    def _averaged_sums(self) -> torch.Tensor:
        return self.gather(self.sums[None]).mean(0)

    def first_non_finite(self) -> float | None:
        """The loss's sum since the last check if it is NaN or infinite (any of the four), else None."""
        if bool(torch.isfinite(self.sums).all()):
            return None
        return float(self.sums[0])

    def pop(self) -> list[float]:
        """The averages since the last call, and a fresh start."""
        averages = (self._averaged_sums().double().cpu() / self.count).tolist()
        self.sums = torch.zeros_like(self.sums)
        self.count = 0
        return averages

    def state(self) -> dict:
        return {"running_sums": self._averaged_sums().double().cpu().tolist(), "running_count": self.count}


def set_learning_rate(optimizer, lr_scheduler, learning_rate: float) -> None:
    """Apply `learning_rate` to a restored optimizer and scheduler (whose state holds the interrupted run's), keeping
    the schedule's position: a resume with a new --learning_rate uses it."""
    scheduler = getattr(lr_scheduler, "scheduler", lr_scheduler)
    if all(base == learning_rate for base in scheduler.base_lrs):
        return
    logger.info(f"resuming with --learning_rate {learning_rate} (the checkpoint's run used {scheduler.base_lrs[0]})")
    lambdas = getattr(scheduler, "lr_lambdas", None)
    for index, group in enumerate(optimizer.param_groups):
        old = scheduler.base_lrs[index]
        if lambdas is not None:
            group["lr"] = learning_rate * lambdas[index](scheduler.last_epoch)
        else:
            group["lr"] = group["lr"] * learning_rate / old if old else learning_rate
        group["initial_lr"] = learning_rate
    scheduler.base_lrs = [learning_rate] * len(optimizer.param_groups)
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]


# Settings a resume may change: they leave the updates of the run as they were (how often it logs, validates and
# checkpoints; where its files are; when it stops), or are the remedies for a run stopped by a non-finite loss
# (--learning_rate, applied at the schedule's position, --max_grad_norm, the precision). Every other setting makes
# another run and is refused on resume. The data and the global batch are compared as what they are (the texts, the
# batch of all processes together), not by the paths and per-device numbers that give them.
RESUMABLE = {
    "config",
    "output_dir",
    "overwrite_output_dir",
    "resume_from_checkpoint",
    "learning_rate",
    "max_grad_norm",
    "mixed_precision",
    "use_cpu",
    "torch_compile",
    "max_train_steps",
    "num_train_epochs",
    "eval_steps",
    "early_stopping_patience",
    "checkpointing_steps",
    "save_total_limit",
    "logging_steps",
    "report_to",
    "per_device_eval_batch_size",
    "data_dir",
    "train_file",
    "validation_file",
    "per_device_train_batch_size",
    "word_dropout",
    "aggregate_posterior_components",
}  # fmt: skip  (word_dropout: compared as the config_overrides field it sets)
RESUMABLE_WORDS = (
    "A resume may change --learning_rate, --max_grad_norm, --mixed_precision, --use_cpu, --torch_compile, "
    "--max_train_steps or "
    "--num_train_epochs (unless a schedule spreads over them), how often the run logs, validates and checkpoints, "
    "--early_stopping_patience, --save_total_limit, --report_to, --per_device_eval_batch_size, where the data is (not "
    "the texts), the number of processes (not the total batch) and --aggregate_posterior_components (fitted once "
    "training ends)."
)
LENGTH_FREE_SCHEDULERS = ("constant", "constant_with_warmup", "inverse_sqrt")  # do not depend on --max_train_steps


def run_settings(args, processes: int) -> dict:
    settings = json.loads(json.dumps(plain_settings(vars(args))))
    settings["train_batch_size"] = args.per_device_train_batch_size * processes
    return settings


def _setting_name(name: str) -> str:
    if name == "train_batch_size":
        return "the batch size (--per_device_train_batch_size x processes)"
    return f"--{name}"


def check_resume_settings(state: dict, args, processes: int, checkpoint: Path) -> dict:
    """Refuse a resume whose settings would make another run than the checkpoint's. Returns the settings that
    changed as a resume may change them, {name: [before, now]}."""
    recorded = state.get("settings")
    if recorded is None:
        logger.warning(
            f"{checkpoint} predates recorded settings: the resume cannot check that its settings are the run's"
        )
        return {}
    current = run_settings(args, processes)
    common = sorted(set(recorded) & set(current))
    refused = [name for name in common if name not in RESUMABLE and recorded[name] != current[name]]
    if refused:
        listed = "; ".join(f"{_setting_name(n)} {current[n]!r} (the run: {recorded[n]!r})" for n in refused)
        raise ValueError(
            f"--resume_from_checkpoint {checkpoint} continues a run made with other settings, and resuming would "
            f"make another run: {listed}. Resume with the run's settings (its checkpoints' {TRAINER_STATE} and its "
            "training_config.yaml record them), or start a new run in another --output_dir (--model_name_or_path "
            f"DIR trains a saved model further). {RESUMABLE_WORDS}"
        )
    return {name: [recorded[name], current[name]] for name in common if recorded[name] != current[name]}


def data_fingerprint(raw: dict) -> dict:
    """SHA-256 of the training and validation rows, in order: what the run trained and selected its model on."""
    digests = {}
    for split in ("train", "validation"):
        digest = hashlib.sha256()
        for batch in raw[split].iter(batch_size=1000):
            digest.update(json.dumps(batch, sort_keys=True, ensure_ascii=False).encode())
        digests[split] = digest.hexdigest()
    return digests


def check_resume_data(state: dict, data: dict, total_steps: int, args, checkpoint: Path) -> None:
    recorded = state.get("data_sha256")
    if recorded:
        changed = [split for split in ("train", "validation") if recorded.get(split) != data[split]]
        if changed:
            raise ValueError(
                f"--resume_from_checkpoint {checkpoint}: the {' and '.join(changed)} texts are not those the run was "
                "trained on (--dataset, --train_file, --validation_file or their splits give other texts now). Resume "
                "with the run's data, or train on the new data in a new run: --model_name_or_path DIR (a saved model) "
                "and another --output_dir."
            )
    before = state.get("total_steps")
    if before and before != total_steps:
        depends = [f"--kl_schedule {args.kl_schedule}"] if args.kl_schedule == "cyclical" else []
        if args.lr_scheduler_type not in LENGTH_FREE_SCHEDULERS:
            depends.append(f"--lr_scheduler_type {args.lr_scheduler_type}")
        if depends:
            raise ValueError(
                f"--resume_from_checkpoint {checkpoint}: the run was set for {before} updates and {' and '.join(depends)} "
                f"spreads over them, so {total_steps} would change the schedule the run has followed. Resume with "
                f"--max_train_steps {before}, or start a new run."
            )
        logger.info(f"the run was set for {before} updates; it now makes {total_steps}")
