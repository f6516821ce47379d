"""The command lines' way of failing: a bad input or a damaged file is one message on stderr and exit status 1,
not a traceback (set TWRVAE_TRACEBACK=1 to see the traceback as well); Ctrl-C is one line and exit status 130.
Settings that are wrong in themselves are refused by argument parsing, with argparse's usage line and status 2."""

from __future__ import annotations

import os
import sys

import yaml

from modeling_twrvae.file_utils import disk_full_error

# What a user can fix: wrong or missing input, damaged or unreadable files, a full disk. Anything else is a bug
# and keeps its traceback.
USER_ERRORS = (ValueError, OSError, yaml.YAMLError, UnicodeDecodeError)
INTERRUPTED_STATUS = 130  # 128 + SIGINT, what a shell reports for a command stopped by Ctrl-C


def run_main(main, also: tuple[type[BaseException], ...] = (), interrupted: str = "interrupted") -> None:
    """Run `main()`; the user's errors (and the `also` classes) end the process with their message alone, and Ctrl-C
    (KeyboardInterrupt) with the line `interrupted` and status 130."""
    try:
        main()
    except KeyboardInterrupt:
        if os.environ.get("TWRVAE_TRACEBACK"):
            raise
        sys.stderr.flush()
        print(interrupted, file=sys.stderr, flush=True)
        sys.exit(INTERRUPTED_STATUS)
    except USER_ERRORS + also as error:
        if os.environ.get("TWRVAE_TRACEBACK"):
            raise
        if isinstance(error, OSError):
            error = disk_full_error(error, getattr(error, "filename", None) or "a file")
        sys.exit(f"error: {error}")


def brief(error: BaseException) -> str:
    """An unexpected error in one line, for a message that names its cause: its class and its message's first line."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"
