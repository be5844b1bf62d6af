"""The docs site's generated pages: the CLI reference from the parser (what `--help` prints) and
the error types from the catalogue in bulk_sync/errors.py. tests/test_docs_site.py holds the
committed pages equal to these; after changing a flag or the catalogue, write them again:

    python tests/make_docs.py
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
from pathlib import Path

from bulk_sync.cli.args import build_parser
from bulk_sync.errors import ROW_ERRORS, RUN_ERRORS

ROOT = Path(__file__).resolve().parent.parent
CLI_PAGE = ROOT / "docs" / "reference" / "cli.md"
ERRORS_PAGE = ROOT / "docs" / "reference" / "errors.md"
INDEX_PAGE = ROOT / "docs" / "index.md"
WIDTH = "100"  # the help text's width on the page (argparse reads $COLUMNS)


def help_text(*command: str) -> str:
    """What `bulk-sync COMMAND --help` prints, at WIDTH columns."""
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH
    try:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            build_parser().parse_args([*command, "--help"])
        return out.getvalue()
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


def commands() -> list[str]:
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []


def cli_page() -> str:
    parts = [
        "# CLI reference\n\n",
        "Every command and flag, as `bulk-sync COMMAND --help` prints it (this page is generated from\n",
        "the parser by `python tests/make_docs.py`, and a test holds it equal to `--help`). What the\n",
        "commands do, with examples: [Commands](commands.md).\n\n",
        "## bulk-sync\n\n```text\n",
        help_text(),
        "```\n",
    ]
    for name in commands():
        parts += [f"\n## bulk-sync {name}\n\n```text\n", help_text(name), "```\n"]
    return "".join(parts)


def errors_page() -> str:
    rows = "".join(f"| `{slug}` | {text} |\n" for slug, text in ROW_ERRORS.items())
    run = "".join(f"| `{slug}` | {text} |\n" for slug, text in RUN_ERRORS.items())
    return (
        "# Error types\n\n"
        "What the report's `error_type` column can say (generated from the catalogue in\n"
        "`bulk_sync/errors.py` by `python tests/make_docs.py`; a test holds this page equal to it).\n"
        "The [mapping language](mapping.md#errors-as-the-report-shows-them) lists the row errors too.\n\n"
        "## A row's problem\n\n"
        "The row is `invalid` (fix the cell, or the mapping) or `skipped`, or SIRO refused it\n"
        "(`rejected`).\n\n"
        "| slug | meaning |\n|---|---|\n" + rows + "\n"
        "## The run's\n\n"
        "The row was not sent, or its request failed: it needs no fixing, only sending again\n"
        "(`failed`, `not_sent`).\n\n"
        "| slug | meaning |\n|---|---|\n" + run
    )


def index_page() -> str:
    """The site's home page: the README, its links into docs/ made relative to docs/, less what
    is said for a reader of the repository (how to build this site, the development commands)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    docs = text.index("## Documentation")
    listing = text.index("\n- ", docs)
    text = text[:docs] + "## Where next\n" + text[listing : text.index("## Development")]
    return re.sub(r"\]\(docs/", "](", text).rstrip("\n") + "\n"


PAGES = {CLI_PAGE: cli_page, ERRORS_PAGE: errors_page, INDEX_PAGE: index_page}


def main() -> None:
    for page, make in PAGES.items():
        page.write_text(make(), encoding="utf-8")
        print(f"wrote {page.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
