"""Job, events: what a job tells its caller while it goes on. A caller subclasses :class:`Events`
and overrides what it shows (the CLI prints; a notebook may collect; an orchestrator task may log);
the defaults only log, so a library caller that passes nothing sees nothing printed.
"""

from __future__ import annotations

import logging
from typing import Any

from ..report import ResultBlock, RowResult, Summary

log = logging.getLogger("bulk_sync.job")


class Events:
    """The job's messages, in the order they happen. Every method may be overridden; none may
    raise (an exception in a callback ends the job as any error would)."""

    def info(self, text: str) -> None:
        """A line of what the job does ("reps: checked against 12 active SIRO users")."""
        log.info("%s", text)

    def warning(self, text: str) -> None:
        """Something a person should know; the job goes on."""
        log.warning("%s", text)

    def error(self, text: str) -> None:
        """Something went wrong in a part of the job (the mirror held); the result says how it ends."""
        log.error("%s", text)

    def notice(self, text: str) -> None:
        """A line while rows go by ("stopping: ..."): shown without breaking a progress bar."""
        log.info("%s", text)

    def started(self, estimated_rows: int | None) -> None:
        """The rows are about to be read; roughly this many (None: not known)."""

    def row(self, result: RowResult | ResultBlock) -> None:
        """One row's result (a block: rows that need no attention, valid or unchanged), in input
        order, after it was written to the report."""

    def ahead(self, rows: int) -> None:
        """Progress only: ``rows`` checked ahead of their results (a large dry run's second half, by
        its worker process); negative when those results arrive, as :meth:`row` counts them then."""

    def finished_rows(self, summary: Summary | None) -> None:
        """Every row has its result (None: the run ended in an error), before the outputs close."""

    def payload(self, body: dict[str, Any]) -> None:
        """One of the first ``show`` payloads built (``Sync.run(..., show=N)``)."""


QUIET = Events()
