"""Review: a local web page for ops staff (``bulk-sync serve``): the runs the watcher and the CLI
wrote, a run's rows that did not sync in a grid, fixed in place (each edit checked again by the
code `validate` runs), the fixed rows dropped into the inbox for the watcher to send, and a
preview of a file before it is dropped.

It reads the reports, error files and summaries runs already write; it keeps a person's edits in
``<run>-fixes.json`` beside them and never edits a run's own files. It holds no SIRO token.

The parts, one way: ``runs`` (runs found from their outputs; a run's grid from its error file),
``check`` (a row checked as `validate` checks it; the fixed rows' file), ``app`` (the pages, the
actions and the security middleware), ``server`` (serving it on 127.0.0.1).
"""

from __future__ import annotations

from .app import Review
from .server import serve

__all__ = ["Review", "serve"]
