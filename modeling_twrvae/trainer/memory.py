"""Keep the memory of large freed tensors in the process on Linux CPUs, so the next step reuses it.

glibc serves every allocation above its mmap threshold (at most 32 MiB) with a fresh `mmap` and unmaps it on free,
so each training step page-faults its large buffers (the (tokens, vocabulary) logits and their gradient, 60 MB at
the papers' sizes) back in, one 4 KiB page at a time. On a 2-core CPU that cost about as much as the log-softmax
itself. Raising the mmap and trim thresholds keeps freed blocks on the heap for reuse (what jemalloc or tcmalloc,
the allocators PyTorch recommends for CPU training, do by default).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_GLIBC_DEFAULT = 128 * 1024
_KEEP = 1 << 30  # 1 GiB: any tensor smaller than this is served from, and returned to, the heap


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") else None  # musl and others have no mallopt
    except OSError:
        return None


def reuse_freed_memory(enable: bool = True) -> bool:
    """Keep (or, with `enable=False`, stop keeping) freed large blocks for reuse. Returns whether it applied:
    only glibc on Linux has these settings; elsewhere this does nothing."""
    libc = _libc()
    if libc is None:
        return False
    value = _KEEP if enable else _GLIBC_DEFAULT
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, value)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, value))


__all__ = ["reuse_freed_memory"]
