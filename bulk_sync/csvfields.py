"""CSV fields: a long cell (a note of a few hundred KB) is a cell, not an error, for every read with
the csv module (a file's first lines, its row count, its quotes, a report read back).

The csv module refuses a field of more than 131,072 characters, and its limit
(``csv.field_size_limit``) is one for the whole process: there is no per-reader setting. So it is
raised only while one of our reads runs (:func:`long_fields`) and put back when the last such read
ends. Reads that overlap (the reader thread and the event loop's, two review checks) share one
raise, counted; a csv read of someone else's running in another thread at that moment sees the
raised limit too, never a lower one. (The chunks themselves are parsed by pandas, which has no
such limit.)
"""

from __future__ import annotations

import contextlib
import csv
import sys
import threading
from collections.abc import Iterator

LONG_FIELD = min(sys.maxsize, 2**31 - 1)  # as large as the csv module takes (a C long, on Windows too)

_lock = threading.Lock()
_reads = 0  # reads under way with the limit raised
_before = 0  # the limit they found (put back when the last one ends)


@contextlib.contextmanager
def long_fields() -> Iterator[None]:
    """csv fields of any length while the block runs (a generator: while it is not finished)."""
    global _reads, _before
    with _lock:
        if _reads == 0:
            _before = csv.field_size_limit(LONG_FIELD)
        _reads += 1
    try:
        yield
    finally:
        with _lock:
            _reads -= 1
            if _reads == 0:
                csv.field_size_limit(_before)
