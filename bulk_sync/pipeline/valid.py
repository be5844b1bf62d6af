"""Pipeline, valid: what becomes of a chunk's valid rows, handed over as columns (ValidRows): a dry
run reports them as blocks (with a state file, each one new, changed or unchanged: the predicted
effect); a run encodes them, and each one is unchanged or to send. ``--show`` takes the first ones
as payloads of their own.
"""

from __future__ import annotations

from ..notes import PREDICTED_CHANGED, PREDICTED_NEW, UNCHANGED_NOTE, RowNote
from ..payload import Payload
from ..report import VALID, ResultBlock
from ..settings import ReadSettings
from ..state import payload_hash
from .entries import ChunkRun
from .plan import may_be_too_large, too_large
from .reps import RepCheck
from .results import Block, Row
from .warnings import row_warnings


class ValidRows:
    """Called by a ChunkRun with runs of consecutive valid rows."""

    def __init__(
        self, settings: ReadSettings, reps: RepCheck | None, show: int = 0, predict: bool = False
    ) -> None:
        self.settings, self.reps = settings, reps
        self.show = show  # the first valid rows are handed on as payloads of their own (--show)
        self.predict = predict  # a dry run with a state file: new, changed or unchanged
        self.small = False  # the file at hand is too small to hold a record too large to send

    def __call__(self, run: ChunkRun, rows: list[int], first: int) -> None:
        """Valid rows ``rows`` of a chunk, sequence numbers ``first``, ``first + 1``, ..., handed to
        ``run``: one block in a dry run (the first ``show`` as payloads of their own); else encoded,
        and each one unchanged or to send. A record whose JSON is larger than a request may be is
        invalid (``too-large``), never sent."""
        if self.show:
            head, rows = rows[: self.show], rows[self.show :]
            self.show -= len(head)
            ids_col = run.mc.column("externalId")
            assert ids_col is not None
            warned = row_warnings(run.mc, run.cc, head, run.warnings, self.reps, run.rep_memo)
            for k, (i, warning) in enumerate(zip(head, warned, strict=True)):
                rec = run.mc.light_record(i, ids_col[i])
                rec.warning = warning
                built = run.cc.payload(i)
                note = self._note(run, ids_col[i], built)
                run.add(Row(first + k, rec, built, note=note, unchanged=note is UNCHANGED_NOTE))
            first += len(head)
        if not rows:
            return
        if self.settings.dry_run and self.predict:
            self._predict(run, rows, first)
        elif self.settings.dry_run:
            self._dry(run, rows, first)
        else:
            self._encode(run, rows, first)

    def _note(self, run: ChunkRun, ext: str | None, built: object) -> RowNote | None:
        """A shown row's predicted effect (a dry run with a state file), as the rows not shown get
        theirs: new, changed, or unchanged; None: nothing predicted."""
        if not (self.settings.dry_run and self.predict) or not isinstance(built, Payload):
            return None
        held = run.known.get(ext) if run.known and ext is not None else None
        if held is None:
            return PREDICTED_NEW
        return UNCHANGED_NOTE if held[0] == payload_hash(built.raw) else PREDICTED_CHANGED

    def _dry(self, run: ChunkRun, rows: list[int], first: int) -> None:
        mc, cc = run.mc, run.cc
        ids_col = mc.column("externalId")
        assert ids_col is not None
        limit = self.settings.max_body_bytes
        warned = row_warnings(mc, cc, rows, run.warnings, self.reps, run.rep_memo)
        if run.may_be_large is None:  # once a chunk: a bound from its longest texts
            run.may_be_large = self.small is False and may_be_too_large(mc.bound, mc.raw, run.chunk, limit)
        sizes = dict(zip(rows, map(len, cc.bodies(rows)), strict=True)) if run.may_be_large else {}
        start = 0
        for k, i in enumerate([*rows, -1]):
            big = too_large(sizes.get(i, 0), limit) if i >= 0 else None
            if i >= 0 and big is None:
                continue
            if k > start:  # the valid rows before this one, as a block
                part = rows[start:k]
                notes = warned[start:k] if any(warned[start:k]) else None
                numbers, ids = [mc.row_numbers[j] for j in part], [ids_col[j] for j in part]
                block = ResultBlock(mc.file, mc.sheet, VALID, numbers, ids, None, notes)
                run.add(Block(first + start, block))
            if big is not None:
                run.add(Row(first + k, mc.light_record(i, ids_col[i]), [big]))
            start = k + 1

    def _encode(self, run: ChunkRun, rows: list[int], first: int) -> None:
        mc, cc, known, sources = run.mc, run.cc, run.known, run.sources
        ids_col = mc.column("externalId")
        assert ids_col is not None
        limit = self.settings.max_body_bytes
        warned = row_warnings(mc, cc, rows, run.warnings, self.reps, run.rep_memo)
        bodies = cc.bodies(rows)
        digests = list(map(payload_hash, bodies))
        for k, i in enumerate(rows):
            ext, number = ids_col[i], mc.row_numbers[i]
            big = too_large(len(bodies[k]), limit)
            if big is not None:
                run.add(Row(first + k, mc.light_record(i, ext), [big]))
                continue
            held = known.get(ext) if known else None
            if held is not None and held[0] == digests[k]:
                run.unchanged(first + k, number, ext)
                if sources is not None and held[1] != sources[i]:
                    run.found.append((ext, digests[k], sources[i]))
                continue
            source = sources[i] if sources is not None else None
            rec = mc.light_record(i, ext, cc.shape[i])
            rec.warning = warned[k]
            run.add(Row(first + k, rec, Payload(ext, None, bodies[k]), digests[k], source))

    def _predict(self, run: ChunkRun, rows: list[int], first: int) -> None:
        """A dry run with a state file: each valid row new, changed, or unchanged (what a run would
        do with it), by its payload's hash against the one SIRO acknowledged last."""
        mc, cc, known = run.mc, run.cc, run.known
        ids_col = mc.column("externalId")
        assert ids_col is not None
        warned = row_warnings(mc, cc, rows, run.warnings, self.reps, run.rep_memo)
        bodies = cc.bodies(rows)
        part: list[int] = []  # positions in ``rows`` of the current run of rows a run would send

        def flush() -> None:
            if part:
                numbers = [mc.row_numbers[rows[k]] for k in part]
                ids = [ids_col[rows[k]] for k in part]
                notes: list[str | RowNote | None] = [
                    PREDICTED_CHANGED if ids_col[rows[k]] in known else PREDICTED_NEW for k in part
                ]
                block = ResultBlock(mc.file, mc.sheet, VALID, numbers, ids, notes, [warned[k] for k in part])
                run.add(Block(first + part[0], block))
                part.clear()

        for k, i in enumerate(rows):
            big = too_large(len(bodies[k]), self.settings.max_body_bytes)
            held = known.get(ids_col[i])
            if big is None and (held is None or held[0] != payload_hash(bodies[k])):
                part.append(k)
                continue
            flush()
            if big is not None:
                run.add(Row(first + k, mc.light_record(i, ids_col[i]), [big]))
            else:
                run.unchanged(first + k, mc.row_numbers[i], ids_col[i])
        flush()
