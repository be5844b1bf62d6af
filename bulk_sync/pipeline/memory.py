"""Pipeline, memory: freed memory handed back to the system as a long run goes.

glibc keeps the blocks a program frees in its heaps (one heap per thread) for later use; with the
reader thread and the event loop allocating and freeing side by side, a long run's resident size
crept up with the rows read (a 1M-row dry run ended 15 MB above a 100k one) though what it holds
does not grow. ``malloc_trim(0)`` returns the free pages of every heap; it is called between the
id pass and the run, and every TRIM_EVERY chunks. Where the C library has no such call (macOS,
Windows, musl) this does nothing. A worker process also keeps glibc's mmap threshold fixed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

TRIM_EVERY = 16  # chunks (80,000 rows of a CSV): a trim of a 150 MB heap takes about a millisecond


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
WORKER_MMAP_THRESHOLD = 128 * 1024  # glibc's starting value, kept fixed in a worker process


def _libc(name: str) -> Callable[..., int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        fn: Callable[..., int] = getattr(libc, name)
    except (OSError, AttributeError, TypeError):
        return None
    return fn


_TRIM = _libc("malloc_trim")
_MALLOPT = _libc("mallopt")


def give_back() -> None:
    """Return the free pages of the C heaps to the system (a no-op without glibc)."""
    if _TRIM is not None:
        _TRIM(0)


def fixed_mmap_threshold() -> None:
    """In a dry run's worker process: blocks of 128 KB or more are mapped and unmapped on their own,
    always. glibc otherwise raises that threshold to the largest block freed (each chunk's 1.6 MB
    message, its columns), after which such blocks stay in the heap, and the worker's private memory
    grew with the length of the run (34 to 42 MB from 100k to 3M rows; 32 to 39 with this). It
    costs the worker CPU (mapping pages anew), which it has to spare: the reader is the slower
    side (a million-row dry run was no slower, three alternated pairs). A no-op without glibc."""
    if _MALLOPT is not None:
        _MALLOPT(M_MMAP_THRESHOLD, WORKER_MMAP_THRESHOLD)
