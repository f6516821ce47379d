"""One command at a time in a folder: `locked_folder` holds the folder's lock while a command writes into it, and
`remove_temporary_leftovers` deletes what an interrupted write left there."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sys
import time
from pathlib import Path

import filelock

from modeling_twrvae.file_utils import TEMPORARY_SUFFIX, atomic_write_text

LOCK_FILE = ".twrvae.lock"  # held (flock) by the command writing into a folder
LOCK_OWNER_FILE = ".twrvae.lock.owner"  # who holds it: pid, command line, start time


class FolderInUseError(OSError):
    """Another live process holds the folder's lock."""


def remove_temporary_leftovers(folder: str | Path) -> list[Path]:
    """Delete what an interrupted write (a crash, a full disk) left in `folder`: its hidden `*.tmp` files and
    folders. Returns what was removed."""
    folder = Path(folder)
    removed = []
    if folder.is_dir():
        for path in folder.iterdir():
            if path.name.startswith(".") and path.name.endswith(TEMPORARY_SUFFIX):
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
                removed.append(path)
    return removed


@contextlib.contextmanager
def locked_folder(folder: str | Path, command: str = "a twrvae command"):
    """Hold `folder`'s lock while writing into it: a second process that asks for it fails at once with a
    `FolderInUseError` naming the live one. The folder is created if missing; the lock files are hidden and stay
    (removing a lock file another process may be opening would race)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(folder / LOCK_FILE), timeout=0)
    owner = folder / LOCK_OWNER_FILE
    try:
        lock.acquire()
    except filelock.Timeout:
        try:
            holder = owner.read_text(encoding="utf-8").strip()
        except OSError:
            holder = "another process"
        raise FolderInUseError(
            errno.EBUSY,
            f"{folder} is in use by {holder}: wait for it to finish (or stop it), or choose another folder",
        ) from None
    try:
        atomic_write_text(
            owner, f"{command} (pid {os.getpid()}: {' '.join(sys.argv)}; since {time.strftime('%Y-%m-%d %H:%M:%S')})"
        )
        yield folder
    finally:
        lock.release()


__all__ = ["FolderInUseError", "LOCK_FILE", "LOCK_OWNER_FILE", "locked_folder", "remove_temporary_leftovers"]
