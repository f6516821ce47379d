"""The command lines' way of failing: a bad input or a damaged file is one message on stderr and exit status 1,
not a traceback (set TWRVAE_TRACEBACK=1 to see the traceback as well)."""

from __future__ import annotations

import os
import sys

import yaml

from modeling_twrvae.file_utils import disk_full_error

# What a user can fix: wrong or missing input, damaged or unreadable files, a full disk. Anything else is a bug
# and keeps its traceback.
USER_ERRORS = (ValueError, OSError, yaml.YAMLError, UnicodeDecodeError)


def run_main(main, also: tuple[type[BaseException], ...] = ()) -> None:
    """Run `main()`; the user's errors (and the `also` classes) end the process with their message alone."""
    try:
        main()
    except USER_ERRORS + also as error:
        if os.environ.get("TWRVAE_TRACEBACK"):
            raise
        if isinstance(error, OSError):
            error = disk_full_error(error, getattr(error, "filename", None) or "a file")
        sys.exit(f"error: {error}")
