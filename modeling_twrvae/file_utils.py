"""Writing files so that a crash never leaves one half-written: write a temporary name, flush it to the disk, then
rename. A reader that has the old file open (or memory-mapped, as safetensors does) keeps the old contents intact:
a file is replaced, never truncated in place."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from pathlib import Path

TEMPORARY_SUFFIX = ".tmp"
WEIGHT_SUFFIXES = (".safetensors", ".bin")
# not weights: the aggregate-posterior mixture and the attribute vectors, made with the weights after training
NOT_WEIGHTS = ("aggregate_posterior.safetensors", "attribute_vectors.safetensors")


def fsync_file(path: str | Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def fsync_folder(path: str | Path) -> None:
    """Make a rename inside `path` durable (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def umask_mode() -> int:
    """The mode a newly created file gets from the user's umask (0o644 under the usual 022)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` to `path` through a temporary file in the same folder, `fsync` and an atomic rename."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` through a temporary file in the same folder, `fsync` and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}{TEMPORARY_SUFFIX}")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        fsync_folder(path.parent)
    except OSError as error:
        raise disk_full_error(error, path) from error
    finally:
        temporary.unlink(missing_ok=True)
    return path


def atomic_write_json(path: str | Path, value) -> Path:
    return atomic_write_text(path, json.dumps(value, indent=2) + "\n")


def move_files_into(source: str | Path, target: str | Path, last: tuple[str, ...] = ()) -> None:
    """Move every file of the folder `source` into `target` by rename (each flushed first, given the umask's mode),
    replacing files of the same name; `last` names the files moved last (e.g. a marker that the rest is complete).
    `source` is removed."""
    source, target = Path(source), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    mode = umask_mode()
    files = sorted(source.iterdir(), key=lambda p: (p.name in last, p.name))
    for path in files:
        if path.is_file():
            fsync_file(path)
            os.chmod(path, mode)  # safetensors writes through a temporary file of mode 600
    for path in files:
        destination = target / path.name
        if path.is_dir() and destination.is_dir():
            shutil.rmtree(destination)
        os.replace(path, destination)
    fsync_folder(target)
    source.rmdir()


class DiskFullError(OSError):
    """A write that failed for want of space, said in words with what to do."""

    def __str__(self) -> str:
        return self.strerror


# what torch's zip writer and safetensors say when a write runs out of space (neither raises an OSError)
DISK_FULL_WORDS = ("No space left on device", "Disk quota exceeded", "unexpected pos", "file write failed")


def is_disk_full(error: BaseException, path: str | Path | None = None) -> bool:
    """Whether `error` is a write that ran out of space: an ENOSPC/EDQUOT `OSError`, or torch's or safetensors'
    own error for it while the disk under `path` is (nearly) full."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if not any(words in str(error) for words in DISK_FULL_WORDS):
        return False
    if path is None or "unexpected pos" not in str(error):
        return True
    folder = next((p for p in (Path(path), *Path(path).parents) if p.exists()), None)
    try:
        return folder is None or shutil.disk_usage(folder).free < 64 << 20
    except OSError:
        return True


def disk_full_error(error: BaseException, path: str | Path, advice: str = "run the command again") -> BaseException:
    """A full disk said in words (`DiskFullError`), with what to do; other errors, and ones already said, unchanged."""
    if isinstance(error, DiskFullError) or not is_disk_full(error, path):
        return error
    return DiskFullError(
        errno.ENOSPC,
        f"The disk is full: could not write {path}. Nothing was half-written; free some space (the temporary "
        f"`.*.tmp` leftovers are removed at the next start) and {advice}.",
    )


def weights_fingerprint(folder: str | Path) -> str | None:
    """SHA-256 over the names and bytes of the weight files directly in `folder` (None when it holds none; the
    aggregate-posterior mixture is not a weight file): stored beside results, it says which weights they were
    measured on."""
    folder = Path(folder)
    files = (
        sorted(
            p
            for p in folder.iterdir()
            if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES) and p.name not in NOT_WEIGHTS
        )
        if folder.is_dir()
        else []
    )
    if not files:
        return None
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


__all__ = [
    "DiskFullError",
    "atomic_write_json",
    "atomic_write_text",
    "disk_full_error",
    "fsync_file",
    "is_disk_full",
    "fsync_folder",
    "move_files_into",
    "umask_mode",
    "weights_fingerprint",
]
