"""One catalogue of error types (bulk_sync.errors.ROW_ERRORS, RUN_ERRORS): every slug the code
writes is in it, and the docs list it (issue 18: code and docs cannot drift)."""

from __future__ import annotations

import ast
import re

from helpers import ROOT

from bulk_sync.errors import ROW_ERRORS, RUN_ERRORS

PKG = ROOT / "bulk_sync"
CATALOGUE = {**ROW_ERRORS, **RUN_ERRORS}
MAKERS = {"RowError", "CellError", "Skipped"}  # their first argument (or slug=) is a slug


def slugs_in_code() -> dict[str, list[str]]:
    """Every literal slug the package writes: the first argument of RowError/CellError, an
    `error_type=`/`slug=` keyword, an assignment to `slug`, a Skipped's reason kind."""
    found: dict[str, list[str]] = {}

    def add(node: ast.AST, where: str) -> None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.setdefault(node.value, []).append(where)
        elif isinstance(node, ast.IfExp):
            add(node.body, where)
            add(node.orelse, where)

    for path in PKG.rglob("*.py"):
        where = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name in {"RowError", "CellError"} and node.args:
                    add(node.args[0], where)
                if name == "Skipped" and len(node.args) >= 4:
                    add(node.args[3], where)
                for kw in node.keywords:
                    if kw.arg in {"error_type", "slug"}:
                        add(kw.value, where)
            elif isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "slug" for t in node.targets):
                add(node.value, where)
    return found


def test_every_slug_the_code_writes_is_in_the_catalogue() -> None:
    found = slugs_in_code()
    assert len(found) >= 15  # the scan does find them
    assert {s: w for s, w in found.items() if s not in CATALOGUE} == {}


def test_every_slug_of_the_catalogue_is_written_somewhere() -> None:
    found = slugs_in_code()
    unused = set(CATALOGUE) - set(found)
    # api-invalid/api-rejected/retries-exhausted are chosen by the uploader from the answer
    written_elsewhere = {s for s in unused if f'"{s}"' in "".join(p.read_text() for p in PKG.rglob("*.py"))}
    assert unused - written_elsewhere == set()


def test_the_mapping_docs_list_exactly_the_row_errors() -> None:
    text = (ROOT / "docs" / "reference" / "mapping.md").read_text()
    table = text[text.index("## Errors, as the report shows them") :]
    end = table.find("\n\n", table.index("| slug |"))
    table = table[: end if end >= 0 else None]
    listed = set(
        re.findall(r"`([a-z]+(?:-[a-z]+)*)`", "\n".join(r.split("|")[1] for r in table.splitlines()[3:]))
    )
    assert listed == set(ROW_ERRORS)


def test_the_readme_names_every_error_type() -> None:
    text = (ROOT / "docs" / "reference" / "report.md").read_text()
    line = next(ln for ln in text.splitlines() if ln.startswith("| `error_type` |"))
    assert set(re.findall(r"`([a-z]+(?:-[a-z]+)+|footer|filter|aborted|interrupted)`", line)) >= set(
        CATALOGUE
    )
