"""The stage modules import one way only (see STYLE.md): a newcomer can trust `ls bulk_sync/`."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "bulk_sync"

# module -> the package modules it may import
ALLOWED = {
    "errors": set(),
    "settings": {"errors"},
    "load": {"errors", "numfmt", "rx"},
    "numfmt": set(),
    "rx": set(),
    "mapping": {"errors", "load", "rx"},
    "payload": {"errors", "mapping"},
    "pace": set(),
    "upload": {"errors", "settings", "payload", "pace"},
    "dispatch": {"errors", "settings", "payload", "upload"},
    "report": {"errors"},
    "state": {"errors"},
    "pipeline": {
        "errors",
        "settings",
        "load",
        "mapping",
        "payload",
        "upload",
        "dispatch",
        "report",
        "state",
        "group",
        "errorfile",  # Kept: the cells of invalid rows, remembered for the error file
    },
    "sandbox": set(),
    "config": {"errors"},
    "logs": {"errors"},
    "notify": set(),
    "errorfile": {"errors", "load", "report"},
    "watch": {"errors"},
    "scaffold": {"load"},
    "group": {"errors", "mapping"},
    "cli": {
        "errors",
        "settings",
        "payload",
        "pipeline",
        "report",
        "sandbox",
        "state",
        "config",
        "logs",
        "notify",
        "errorfile",
        "watch",
        "scaffold",
        "load",
        "__init__",
    },
    "__init__": set(),
    "__main__": {"cli"},
}
# third-party libraries with exactly one home
HOMES = {
    "pandas": {"load", "mapping"},  # mapping converts a column at a time
    "numpy": {"load", "numfmt", "mapping", "payload", "pipeline"},  # payload: row shapes; pipeline: ids
    "openpyxl": {"load"},
    "python_calamine": {"load"},
    "charset_normalizer": {"load"},
    "defusedxml": {"load"},
    "re2": {"rx"},
    "httpx": {"upload"},
    "tqdm": {"cli"},
    "xlsxwriter": {"report", "errorfile"},
    "watchdog": {"watch"},
    "aiohttp": {"upload", "sandbox"},
    "jsonschema": {"sandbox"},
}


def imports(path: Path) -> tuple[set[str], set[str]]:
    ours, theirs = set(), set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level >= 1:
            if node.module:
                ours.add(node.module.split(".")[0])
            else:  # `from . import x`: x is a module, or a name from __init__
                ours.update(a.name if (PKG / f"{a.name}.py").exists() else "__init__" for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            theirs.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            theirs.update(a.name.split(".")[0] for a in node.names)
    ours.discard("")
    return ours, theirs


def test_every_module_is_known() -> None:
    assert {p.stem for p in PKG.glob("*.py")} == set(ALLOWED)


def test_imports_go_one_way() -> None:
    wrong = {}
    for path in PKG.glob("*.py"):
        ours, _ = imports(path)
        extra = ours - ALLOWED[path.stem] - {"__init__"}
        if extra:
            wrong[path.stem] = sorted(extra)
    assert wrong == {}


def test_foreign_libraries_live_in_one_module() -> None:
    wrong = {}
    for path in PKG.glob("*.py"):
        _, theirs = imports(path)
        for lib, homes in HOMES.items():
            if lib in theirs and path.stem not in homes:
                wrong.setdefault(lib, []).append(path.stem)
    assert wrong == {}


def test_nothing_imports_the_cli() -> None:
    users = [p.stem for p in PKG.glob("*.py") if "cli" in imports(p)[0] and p.stem != "__main__"]
    assert users == []
