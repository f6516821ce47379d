"""Where a command may write a file it is asked for (`evaluate.py --output_file`, `twrvae encode --output`,
`twrvae attribute-vector --output`), checked before any work is done.

A command never replaces a file that it did not create in this run unless the user says so (`--overwrite_output_file`
for evaluate.py, `--overwrite` for the `twrvae` subcommands, as transformers' `--overwrite_output_dir`), and never,
even then:
- a file of a saved model (its weights, config, tokenizer, code, card, vectors), or its input data;
- anything inside a checkpoint folder of a training run, which train.py rotates away as a whole.
The folder must exist or be creatable, and be writable, so that a long evaluation does not end in an error."""

from __future__ import annotations

import os
import re
from pathlib import Path

# the files of a model folder that no command replaces (train.py's own saves go through its locked folder)
MODEL_FILE_NAMES = {
    "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "added_tokens.json", "training_config.yaml", "eval_results.json", "README.md", ".twrvae_train.json",
    "trainer_state.json", "metrics.jsonl", "training_curves.png",
}  # fmt: skip
MODEL_FILE_SUFFIXES = (".safetensors", ".bin", ".py", ".pkl", ".pt")
CHECKPOINT_FOLDER = re.compile(r"^checkpoint-\d+$")
RUN_MARKER = ".twrvae_train.json"


def is_checkpoint_folder(folder: Path) -> bool:
    """A checkpoint of a train.py run: `checkpoint-N` holding trainer_state.json, or inside a run's folder."""
    return bool(CHECKPOINT_FOLDER.match(folder.name)) and (
        (folder / "trainer_state.json").is_file() or (folder.parent / RUN_MARKER).is_file()
    )


def enclosing_checkpoint(path: str | Path) -> Path | None:
    """The checkpoint folder of a training run that `path` is in (or is), if any."""
    path = Path(path).absolute()
    for folder in (path, *path.parents):
        if is_checkpoint_folder(folder):
            return folder
    return None


def is_model_folder(folder: Path) -> bool:
    return (folder / "config.json").is_file() or (folder / RUN_MARKER).is_file()


def is_model_file(path: Path) -> bool:
    """A file that belongs to the saved model in its folder."""
    if not is_model_folder(path.parent):
        return False
    return path.name in MODEL_FILE_NAMES or path.name.endswith(MODEL_FILE_SUFFIXES) or path.name.startswith("tokenizer")


def check_output_files(
    paths: list[str | Path],
    option: str,
    overwrite: bool,
    overwrite_flag: str,
    inputs: tuple[str | Path | None, ...] = (),
) -> None:
    """Refuse, before any work, to write `paths` (the files one `option` makes) where that would lose something.

    Raises `FileExistsError`, `IsADirectoryError` or `PermissionError` with one line naming the option and the fix."""
    given = Path(paths[0])
    sources = {Path(p).resolve() for p in inputs if p}
    for path in map(Path, paths):
        named = "" if path == given else f" (written beside {option} {given})"
        if path.is_dir():
            raise IsADirectoryError(f"{option} {path} is a folder{named}: name a file, e.g. {path / 'results.json'}.")
        checkpoint = enclosing_checkpoint(path.parent)
        if checkpoint is not None:
            raise PermissionError(
                f"{option} {path} is inside {checkpoint}, a checkpoint of a training run, which train.py replaces or "
                "deletes as a whole: write it elsewhere."
            )
        if path.resolve() in sources or (path.exists() and is_model_file(path)):
            what = "the data it reads" if path.resolve() in sources else f"part of the saved model in {path.parent}"
            raise FileExistsError(f"{option} {path}{named} is {what}: it is never replaced. Choose another name.")
        if (path.exists() or path.is_symlink()) and not overwrite:
            raise FileExistsError(
                f"{option} {path}{named} exists: pass {overwrite_flag} to replace it, or choose another name."
            )
    folder = given.parent
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise NotADirectoryError(f"{option} {given}: {existing} is a file, not a folder.")
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"{option} {given}: {existing} is not writable; choose a folder you can write to.")


__all__ = ["check_output_files", "enclosing_checkpoint", "is_checkpoint_folder", "is_model_file"]
