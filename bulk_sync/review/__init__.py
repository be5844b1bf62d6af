"""Review: a local web page for ops staff (``bulk-sync serve``): the runs the watcher and the CLI
wrote, a run's rows that did not sync in a grid, fixed in place (each edit checked again by the
code `validate` runs), the fixed rows dropped into the inbox for the watcher to send, and a
preview of a file before it is dropped.

It reads the reports, error files and summaries runs already write; it keeps a person's edits in
``<run>-fixes.sqlite`` beside them (each row with a version; the sends; the audit log) and never
edits a run's own files. It holds no SIRO token.

The parts, one way, lowest first: ``safefs`` (paths kept under their root, no link followed, files
created exclusively), ``runs`` (runs found from their outputs; a run's error files, each a grid),
``check`` (a row checked as `validate` checks it), ``words`` (its messages in an ops person's
words), ``store`` (the edits in SQLite), ``edits`` (an edit checked and stored, a send, where a run
stands), ``bulk`` (filters, apply-to-all, resend, undo), ``view`` (one page of the grid),
``preview`` (a preview in a bounded child process), ``guard`` (the key, sessions, Host, CSRF,
headers), ``app`` (the pages and actions), ``server`` (serving it: hosts, TLS).
"""

from __future__ import annotations

from .app import Review
from .server import serve

__all__ = ["Review", "serve"]
