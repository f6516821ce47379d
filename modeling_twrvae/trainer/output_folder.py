"""The rules of train.py's `--output_dir`: what train.py writes there (and so owns), the lock held for the whole run,
the checks before a run starts in a folder, what `--overwrite_output_dir` removes, and the marker that says the
folder holds a run of train.py and which files are its best model.

A folder that holds anything but nothing or an earlier run of train.py is refused without being touched; a
`--overwrite_output_dir` removes only the files train.py writes, never others. The best model is saved into the
folder file by file, each renamed into place (`save_model`), so that it is never half written.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import yaml
from accelerate.logging import get_logger

from modeling_twrvae.aggregate_posterior import AGGREGATE_POSTERIOR_FILE, save_mixture
from modeling_twrvae.commands.output_files import enclosing_checkpoint
from modeling_twrvae.file_utils import (
    TEMPORARY_SUFFIX,
    WEIGHT_SUFFIXES,
    atomic_write_json,
    atomic_write_text,
    disk_full_error,
    move_files_into,
    weights_fingerprint,
)
from modeling_twrvae.storage.locking import LOCK_FILE, LOCK_OWNER_FILE, locked_folder, remove_temporary_leftovers

logger = get_logger(__name__)
COMMAND = "training/train.py"  # the marker's `written_by`, and the name the lock gives a second run

# What train.py writes into --output_dir. `--overwrite_output_dir` removes these and nothing else.
RUN_MARKER = ".twrvae_train.json"  # says the folder holds a run of this script, and which files are its best model
LOG_FILE = "metrics.jsonl"
CURVES_FILE = "training_curves.png"
EVAL_RESULTS = "eval_results.json"
WEIGHTS_KEY = "weights_sha256"  # in eval_results.json: `weights_fingerprint` of the weights it was measured on
TRACKER_PROJECT = "twrvae"  # the trackers' folder (tensorboard's logs)
RUN_FILES = (RUN_MARKER, LOG_FILE, CURVES_FILE)
MODEL_FILES = {
    "config.json", "generation_config.json", "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
    "pytorch_model.bin.index.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "added_tokens.json", "training_config.yaml", EVAL_RESULTS, AGGREGATE_POSTERIOR_FILE, "attribute_vectors.safetensors",
}  # fmt: skip
# the remote code save_pretrained copies beside config.json: a model's files only where there is a model
CODE_FILES = {path.name for path in Path(__file__).resolve().parents[1].glob("*.py")}
WEIGHT_SHARD = re.compile(r"^(model|pytorch_model)-\d+-of-\d+\.(safetensors|bin)$")
# training/evaluate.py's results (its --output_file, default eval_SPLIT.json, and its .md and .png)
RESULT_FILE = re.compile(r"^(test_results|eval_[\w.-]+)\.(json|md|png)$")
# The folder's checkpoints (checkpointing.py reads and writes them): only complete ones, which hold TRAINER_STATE.
CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
TRAINER_STATE = "trainer_state.json"
RESUME_ADVICE = "resume with `--resume_from_checkpoint latest`"
OVERWRITE_REMOVES = (
    "--overwrite_output_dir removes only what train.py writes there (its model, checkpoints, metrics.jsonl, plot, "
    "tracker logs and the evaluation results of its model); any other file is kept"
)


def list_checkpoints(output_dir: Path) -> list[tuple[int, Path]]:
    found = []
    if output_dir.is_dir():
        for path in output_dir.iterdir():
            match = CHECKPOINT_PATTERN.match(path.name)
            if match and (path / TRAINER_STATE).is_file():  # only complete ones
                found.append((int(match.group(1)), path))
    return sorted(found)


def checkpoint_is_inside(args) -> bool:
    """Whether --resume_from_checkpoint names a checkpoint of --output_dir itself (a continuation, or a rewind)."""
    value = args.resume_from_checkpoint
    if value == "latest":
        return True
    return Path(value).absolute().parent.resolve() == Path(args.output_dir).resolve()


@contextlib.contextmanager
def claim_output_dir(args, output_dir: Path, is_main_process: bool) -> Iterator[str | None]:
    """On the main process: refuse a folder that is not this run's to use, take its lock for the whole run, and
    prepare it; yields how the run uses the folder (see `prepare_output_dir`), None on the other processes."""
    with contextlib.ExitStack() as stack:
        use = None
        if is_main_process:
            refuse_a_foreign_folder(args, output_dir)
            # Held for the whole run, and taken before anything in the folder is touched: a second run on the folder
            # fails at once, naming this one, and removes nothing.
            stack.enter_context(locked_folder(output_dir, COMMAND))
            use = prepare_output_dir(args, output_dir)
        yield use


def read_marker(output_dir: Path) -> dict | None:
    try:
        marker = json.loads((output_dir / RUN_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def write_marker(output_dir: Path, model_files: list[str] | None = None) -> None:
    marker = read_marker(output_dir) or {}
    marker.update(written_by=COMMAND)
    if model_files is not None:
        marker["model_files"] = sorted(model_files)
    marker.setdefault("model_files", [])
    atomic_write_json(output_dir / RUN_MARKER, marker)


class FolderContents:
    """What --output_dir holds, sorted into what train.py writes (`known`) and everything else (`unknown`)."""

    def __init__(self, output_dir: Path):
        entries = []
        if output_dir.is_dir():
            entries = sorted(p for p in output_dir.iterdir() if not _ignored(p.name))
        checkpoints = {path for _, path in list_checkpoints(output_dir)}
        marker = read_marker(output_dir)
        # a marker alone is a run that stopped before it wrote anything (bad data, say): the folder is still empty
        entries = [p for p in entries if not (p.name == RUN_MARKER and len(entries) == 1)]
        self.earlier_run = bool(entries) and (
            marker is not None or (output_dir / LOG_FILE).is_file() or bool(checkpoints)
        )
        recorded = set(marker.get("model_files", [])) if marker else set()
        code = self.earlier_run or (output_dir / "config.json").is_file()
        self.known, self.unknown = [], []
        for path in entries:
            name, is_file = path.name, path.is_file() and not path.is_symlink()
            ours = (
                path in checkpoints
                or (
                    is_file
                    and (name in RUN_FILES or name in recorded or _model_file(name, code) or RESULT_FILE.match(name))
                )
                or (self.earlier_run and name == TRACKER_PROJECT and path.is_dir() and not path.is_symlink())
            )
            (self.known if ours else self.unknown).append(path)
        self.model = [
            p.name for p in entries if p.is_file() and (p.name == "config.json" or p.name.endswith(WEIGHT_SUFFIXES))
        ]

    @property
    def empty(self) -> bool:
        return not (self.known or self.unknown)


def _ignored(name: str) -> bool:
    """The lock's files, and the leftovers of an interrupted write (removed under the lock)."""
    return name in (LOCK_FILE, LOCK_OWNER_FILE) or (name.startswith(".") and name.endswith(TEMPORARY_SUFFIX))


def _model_file(name: str, code: bool = True) -> bool:
    return name in MODEL_FILES or bool(WEIGHT_SHARD.match(name)) or (code and name in CODE_FILES)


def names(paths, limit: int = 8) -> str:
    """The names of `paths` for a message (folders with a slash), at most `limit` of them."""
    listed = [p.name + ("/" if p.is_dir() else "") for p in paths]
    return ", ".join(listed[:limit]) + (f" and {len(listed) - limit} more" if len(listed) > limit else "")


def prepare_output_dir(args, output_dir: Path) -> str:
    """On the main process, holding the folder's lock: refuse a folder that holds anything but nothing or this run,
    and clear an earlier run for --overwrite_output_dir. Returns how the run uses the folder: "continue" (a resume
    from one of its own checkpoints), "elsewhere" (another folder's checkpoint, continued here) or "new"."""
    for leftover in remove_temporary_leftovers(output_dir):
        logger.warning(f"removed {leftover}, left by an interrupted write (a crash or a full disk)")
    if args.resume_from_checkpoint and checkpoint_is_inside(args):
        if read_marker(output_dir) is None:
            write_marker(output_dir)
        return "continue"
    contents = FolderContents(output_dir)
    if not contents.empty and not args.overwrite_output_dir:
        raise FileExistsError(_refusal(args, output_dir, contents))
    if not contents.empty:
        for path in contents.known:
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        if contents.known:
            logger.warning(f"--overwrite_output_dir: removed {output_dir}'s earlier files: {names(contents.known, 40)}")
        if contents.unknown:
            logger.warning(
                f"--overwrite_output_dir kept {names(contents.unknown, 40)} in {output_dir}: train.py did not write "
                f"them ({OVERWRITE_REMOVES})"
                + ("; a model card or results among them describe the removed model" if contents.model else "")
            )
    output_dir.mkdir(parents=True, exist_ok=True)
    write_marker(output_dir, model_files=[])
    if args.resume_from_checkpoint:
        return "elsewhere"
    return "new"


def refuse_a_foreign_folder(args, output_dir: Path) -> None:
    """Before the lock: a folder that holds something but no run of train.py is refused without being touched
    (the lock's hidden files are not even created in it). prepare_output_dir checks again under the lock."""
    if output_dir.is_symlink() and not output_dir.exists():
        raise FileNotFoundError(
            f"--output_dir {output_dir} is a symbolic link to {os.readlink(output_dir)}, which does not exist: create "
            "that folder, or choose another --output_dir."
        )
    if output_dir.exists() and not output_dir.is_dir():
        raise NotADirectoryError(f"--output_dir {output_dir} is a file, not a folder: choose a new or empty folder.")
    checkpoint = enclosing_checkpoint(output_dir)
    if checkpoint is not None:
        raise ValueError(
            f"--output_dir {output_dir} is inside {checkpoint}, a checkpoint of another run, which that run replaces "
            "or deletes as a whole (with everything in it) when it saves newer checkpoints: choose a folder outside "
            "it. To train that checkpoint's model further, pass --model_name_or_path with its saved model."
        )
    if args.overwrite_output_dir or (args.resume_from_checkpoint and checkpoint_is_inside(args)):
        return
    contents = FolderContents(output_dir)
    if not contents.empty and not contents.earlier_run:
        raise FileExistsError(_refusal(args, output_dir, contents))


def _refusal(args, output_dir: Path, contents: FolderContents) -> str:
    if args.resume_from_checkpoint and contents.earlier_run:
        return (
            f"--resume_from_checkpoint {args.resume_from_checkpoint} is not in --output_dir {output_dir}, which holds "
            "an earlier run of train.py: continuing another folder's run here would mix two runs in one log and one "
            "set of checkpoints. Use a new or empty --output_dir (the run continues there; the other folder's log and "
            f"checkpoints stay where they are), or --overwrite_output_dir to remove this folder's earlier run first "
            f"({OVERWRITE_REMOVES})."
        )
    if contents.earlier_run and not list_checkpoints(output_dir):
        return (
            f"{output_dir} holds an earlier run that stopped before its first checkpoint, so it cannot be resumed. "
            f"{without_checkpoint(output_dir)} Or choose another --output_dir."
        )
    if contents.earlier_run:
        return (
            f"{output_dir} holds an earlier run: pass --resume_from_checkpoint latest to continue it, "
            f"--overwrite_output_dir to start afresh ({OVERWRITE_REMOVES}), or another --output_dir."
        )
    if contents.model:
        return (
            f"{output_dir} holds a saved model ({', '.join(contents.model[:4])}) that train.py did not write: training "
            "would replace its weights and leave its other files beside them. Choose a new or empty --output_dir, or "
            f"pass --overwrite_output_dir to replace it ({OVERWRITE_REMOVES})."
        )
    return (
        f"{output_dir} is not empty: it holds files that train.py did not write ({names(contents.unknown)}). Choose a "
        f"new or empty --output_dir, or pass --overwrite_output_dir to train beside them ({OVERWRITE_REMOVES})."
    )


def remove_results(output_dir: Path, why: str) -> None:
    """training/evaluate.py's results in the folder measured the model that is being replaced: remove them."""
    stale = [
        p for p in sorted(output_dir.iterdir()) if p.is_file() and RESULT_FILE.match(p.name) and p.name != EVAL_RESULTS
    ]
    for path in stale:
        path.unlink()
    if stale:
        logger.warning(f"removed {names(stale)}: they are the results of the model that {why}")


def without_checkpoint(output_dir: Path) -> str:
    """What to do with a run folder that has no checkpoint to resume from, keeping the model it saved if any."""
    saved = model_files_in(output_dir) if output_dir.is_dir() else []
    if any(p.name == "config.json" for p in saved):
        return (
            f"The best model the run saved is in {output_dir}: train it further in a new folder with "
            f"--model_name_or_path {output_dir} --output_dir NEW_FOLDER (it is kept), or start afresh with "
            "--overwrite_output_dir, which removes it."
        )
    return "Start afresh with --overwrite_output_dir (the run saved no model yet)."


def model_files_in(output_dir: Path) -> list[Path]:
    """The files of the best model saved in the folder: those the marker records, and any file of a model."""
    recorded = set((read_marker(output_dir) or {}).get("model_files", []))
    return [p for p in sorted(output_dir.iterdir()) if p.is_file() and (p.name in recorded or _model_file(p.name))]


def plain_settings(values: dict) -> dict:
    """The settings of plain types (what training_config.yaml, the trackers and trainer_state.json record)."""
    return {key: value for key, value in values.items() if isinstance(value, (str, int, float, bool, dict, type(None)))}


def save_model(accelerator, model, tokenizer, output_dir: Path, args, metrics: dict) -> None:
    """save_pretrained into a temporary folder, then each file renamed into place: never a half-written file."""
    state_dict = accelerator.get_state_dict(model)  # a collective under FSDP / DeepSpeed: every process calls it
    if not accelerator.is_main_process:
        return
    temporary = output_dir / ".best.tmp"
    if temporary.exists():
        shutil.rmtree(temporary)
    try:
        accelerator.unwrap_model(model).save_pretrained(temporary, state_dict=state_dict)
        tokenizer.save_pretrained(temporary)
        atomic_write_text(
            temporary / "training_config.yaml", yaml.safe_dump(plain_settings(vars(args)), sort_keys=True)
        )
        # which weights these numbers were measured on: publish.py and evaluate.py check it against the folder's
        atomic_write_json(temporary / EVAL_RESULTS, {**metrics, WEIGHTS_KEY: weights_fingerprint(temporary)})
        saved = sorted(path.name for path in temporary.iterdir())
        old = [path for path in model_files_in(output_dir) if path.name not in saved]
        write_marker(output_dir, model_files=saved)
        move_files_into(temporary, output_dir, last=(EVAL_RESULTS,))
        for path in old:  # files of the previous best model that this one does not have
            path.unlink(missing_ok=True)
        remove_results(output_dir, "was replaced by a better one")
    except Exception as error:  # safetensors reports a full disk as its own SafetensorError
        raise disk_full_error(error, output_dir, RESUME_ADVICE) from error


def fit_aggregate_posterior(output_dir: Path, texts, tokenizer, args, device=None) -> dict | None:
    """`--aggregate_posterior_components`: fit the aggregate-posterior mixture of the best model saved in the folder
    on the training `texts` (seeded by --seed, truncated at --max_length as training was) and add
    `aggregate_posterior.safetensors` and the config that names it, each renamed into place (the weights are not
    rewritten). Returns the mixture's settings, or None when the folder holds no model."""
    from modeling_twrvae import TWRVAEModel

    if not (output_dir / "config.json").is_file():
        return None
    model = TWRVAEModel.from_pretrained(output_dir)
    if device is not None:
        model.to(device)
    mixture = model.fit_aggregate_posterior(
        texts,
        tokenizer,
        num_components=args.aggregate_posterior_components,
        seed=args.seed,
        batch_size=args.per_device_eval_batch_size,
        max_length=args.max_length,
    )
    temporary = output_dir / f".aggregate_posterior{TEMPORARY_SUFFIX}"
    if temporary.exists():
        shutil.rmtree(temporary)
    try:
        model.save_pretrained(temporary)  # as any save: config.json (naming the mixture, the pipelines, auto_map)
        for path in temporary.iterdir():
            if path.name not in ("config.json", AGGREGATE_POSTERIOR_FILE):
                path.unlink()  # the folder's own weights and code stay as they are
        # fitted to the weights loaded from the folder: their fingerprint, as `from_pretrained` will compute it
        save_mixture(mixture, temporary / AGGREGATE_POSTERIOR_FILE, weights_fingerprint(output_dir))
        marker = read_marker(output_dir) or {}
        write_marker(output_dir, model_files=sorted({*marker.get("model_files", []), AGGREGATE_POSTERIOR_FILE}))
        move_files_into(temporary, output_dir, last=("config.json",))
    except OSError as error:
        raise disk_full_error(error, output_dir) from error
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    logger.info(
        f"aggregate posterior: {mixture.num_components} Gaussian components fitted to {len(texts)} training texts' "
        f"posterior means ({mixture.settings['iterations']} EM iterations), saved as {AGGREGATE_POSTERIOR_FILE}"
    )
    return mixture.settings
