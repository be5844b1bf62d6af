"""The stage modules import one way only (see STYLE.md): a newcomer can trust `ls bulk_sync/`.

A stage that is a subpackage (``bulk_sync/load/``) counts as one stage for the rules between
stages, and has rules of its own between its parts (INSIDE)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "bulk_sync"

# module -> the package modules it may import
ALLOWED = {
    "errors": set(),
    "settings": {"errors"},
    "csvfields": set(),  # csv's field size limit raised while one of our reads runs, then put back
    "load": {"errors", "csvfields", "numfmt", "rx"},
    "numfmt": set(),
    "rx": set(),
    "mapping": {"errors", "load", "notes", "rx"},  # notes: a record's warnings, why it is superseded
    "payload": {"errors", "mapping"},
    "pace": set(),
    "upload": {"errors", "settings", "payload", "pace"},
    "dispatch": {"errors", "settings", "payload", "upload"},
    "notes": set(),  # the catalogue of warnings and notes: data until an output makes them text
    "forecast": {"notes"},
    "report": {"errors", "csvfields", "forecast", "notes"},
    "lockfile": set(),  # an exclusive lock file held for a process's life (a state file, an inbox)
    "state": {"errors", "lockfile"},
    "pipeline": {
        "errors",
        "settings",
        "load",
        "mapping",
        "payload",
        "upload",
        "dispatch",
        "report",
        "forecast",
        "notes",
        "state",
        "group",
        "errorfile",  # Kept: the cells of invalid rows, remembered for the error file
        "notify",  # finish: the end-of-run webhook
    },
    "sandbox": set(),
    # the job API: Sync -> SyncResult, the one way every caller runs a job
    "job": {
        "errors",
        "settings",
        "payload",
        "pipeline",
        "report",
        "sandbox",
        "state",
        "errorfile",
        "notes",  # check_rows: a row's message and warning as the report says them
        "lockfile",  # a kept sandbox's folder, one job at a time
        "upload",  # calls: SIRO's users for the rep check, the mirror's soft-delete
    },
    "review": {"errors", "load", "notes", "report", "settings", "pipeline", "job"},
    "config": {"errors"},
    "logs": {"errors"},
    "notify": set(),
    "errorfile": {"errors", "load", "notes", "report"},
    "inbox": {"errors", "lockfile"},
    "watch": {"errors", "inbox", "job"},  # job: each file's JobSpec, handed to a child (never cli)
    "scaffold": {"load"},
    "group": {"errors", "mapping"},
    "cli": {
        "job",
        "errors",
        "settings",
        "csvfields",
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
        "inbox",
        "scaffold",
        "load",
        "upload",  # calls: SIRO's users for the rep check, the mirror, deletes
        "lockfile",  # scratch: each run's temporary folder, locked for its life
        "review",  # serve
        "signals",  # held from the first line; the run acts on them
        "__init__",
    },
    "__init__": {"job", "errors", "settings"},  # the public API, imported when first used
    "signals": set(),  # SIGINT/SIGTERM held (noted) until the run's event loop takes them
    "__main__": {"cli", "signals"},
}
# subpackage -> part -> the parts it may import at module level (a part may reach a later one from
# inside a function, as load.model's Source.chunks does for the readers: LATE)
INSIDE = {
    "load": {
        "held": set(),  # a file read through a descriptor its caller opened (checked), not its name
        "headers": set(),
        "cells": set(),
        "formats": {"held"},
        "snapshot": {"held"},  # a file as it was when opened: its size and mtime, reads bounded by them
        # cells: a raw column's cells made text when asked for
        "model": {"cells", "formats", "held", "snapshot"},
        "encoding": {"headers", "model", "snapshot"},
        "footer": {"headers", "model"},
        "csv": {"cells", "encoding", "headers", "held", "model", "snapshot"},  # cells: NUL bytes flagged
        "sheetrows": {"cells", "model"},
        "ods": {"held"},  # .ods cells whose tabs and line breaks calamine drops, read again
        "workbook": {"cells", "formats", "headers", "held", "model", "ods", "sheetrows"},
        "open": {"csv", "headers", "held", "model", "snapshot", "workbook"},
        "__init__": {"cells", "csv", "headers", "held", "model", "open", "snapshot"},
    },
    "mapping": {
        "spec": set(),
        "numbers": set(),
        # the reference semantics of one cell: nothing of the fast engine (columns, bind, records)
        "convert": {"numbers", "spec"},
        # date-times by their day and time parts, where that is certain; the rest to convert/pandas
        "clock": {"spec"},
        "columns": {"clock", "convert", "numbers", "spec"},  # checked against convert, never the reverse
        "yamlsafe": set(),
        "parse": {"spec", "yamlsafe"},
        "binding": {"columns", "spec"},  # columns: the date-time memos kept with a bound mapping
        "records": {"binding", "columns", "convert", "spec"},
        "identity": {"binding", "records", "spec"},
        "evidence": {"binding", "numbers", "records"},
        "__init__": {"binding", "evidence", "identity", "parse", "records", "spec"},
    },
    "pipeline": {
        "plan": {"reps"},
        "memory": set(),  # freed memory handed back to the system (glibc's malloc_trim)
        "cores": set(),  # how many processes may work beside this one (the workers asked, the cores)
        "idtable": set(),  # the id pass's table of id digests, in memory then on disk
        "halves": {"idtable"},  # a large CSV's id pass in two halves at once, one in a helper process
        "superseded": {"halves", "idtable", "memory", "plan"},
        "reps": set(),
        "warnings": {"reps"},
        "results": set(),
        "entries": {"results"},
        "records": {"plan", "results"},
        "handoff": {"results"},  # the bounded queue from the reader thread to the event loop
        "known": set(),  # what the state holds for a chunk's rows
        "valid": {"entries", "plan", "reps", "results", "warnings"},  # a chunk's valid rows
        # one chunk's work: map, check, compare with the state, route its rows (reader or worker)
        "work": {"entries", "known", "plan", "reps", "results", "valid", "warnings"},
        # a large CSV's dry run in two parts at once: the worker's half spooled, read back in order
        "parts": {"memory", "results", "work"},
        "workers": {
            "cores",
            "memory",
            "parts",
            "plan",
            "results",
            "work",
        },  # a dry run's chunks mapped in forked processes
        "chunks": {"handoff", "memory", "parts", "plan", "records", "results", "work", "workers"},
        "stopping": {"results"},  # signals (and one held before the run), a hard stop's last line
        "sizes": set(),  # the batch size learned per SIRO, in the state file
        "run": {"chunks", "entries", "plan", "results", "sizes", "stopping"},
        "drift": {"plan"},  # is tonight's export shaped like the job's last good one
        "mirror": {"plan"},  # the files as the complete list for a window: soft-delete the rest
        "finish": {"plan"},  # the outputs after a run: error files, summary JSON, webhook
        "__init__": {"cores", "plan", "reps", "run", "superseded"},
    },
    "cli": {
        "epilogs": set(),
        "progress": set(),
        "values": set(),
        "profile": set(),  # the config profile as flag defaults; a --sandbox rehearsal sets it aside
        "tools": {"epilogs", "values"},  # the parsers of watch, init-mapping, sandbox, delete
        "parser": set(),  # argparse with "did you mean"
        "args": {"epilogs", "parser", "profile", "tools", "values"},  # profile: its keys as defaults
        # what the CLI reads from the environment and sets in its process (the library: neither)
        "process": set(),
        "delete": {"process", "progress"},
        "streams": {"progress"},  # standard input and pipes read once into a temporary file
        "outputs": {"process", "progress"},  # a job's events on the terminal: the bar, the listed problems
        "run": {
            "outputs",
            "process",
            "progress",
            "streams",
            "values",
        },  # flags -> bulk_sync.Sync -> exit code
        "commands": {"values"},
        "scratch": {"progress"},  # each run's own temporary folder
        "watching": {"args", "commands", "profile", "run"},  # watch: each route's run flags -> a JobSpec
        "child": {
            "process",
            "progress",
            "run",
            "scratch",
        },  # the watcher's child: one JobSpec from stdin, run
        "__init__": {"args", "commands", "profile", "progress", "run", "scratch", "watching"},
    },
}
INSIDE["payload"] = {
    "models": set(),
    "build": {"models"},
    "encode": {"models"},
    "check": {"build", "encode"},
    "__init__": {"build", "check", "models"},
}
INSIDE["upload"] = {
    "proof": set(),  # what a 2xx answer proves: which records SIRO acknowledged
    "answers": {"proof"},
    "retries": {"answers"},  # one request's retries: the sync's and the other calls' alike
    "calls": {
        "answers",
        "retries",
        "transport",
    },  # SIRO's other endpoints: users, the mirror's soft-delete, delete by id
    "transport": set(),
    "sizing": set(),  # how many records a batch holds: fixed, or learned (--batch-size auto)
    "uploader": {"answers", "proof", "retries", "sizing", "transport"},
    "__init__": {"answers", "transport", "uploader"},
}
INSIDE["sandbox"] = {
    "schema": set(),
    "more": {"schema"},  # the endpoints besides the sync: users, soft-delete-removed, delete
    "gateway": set(),  # hidden limits: work a record takes, a gateway that answers 504
    "app": {"gateway", "more", "schema"},
    "kept": {"app"},  # what it holds, kept in a file between runs (a rehearsal's)
    "server": {"app", "kept"},
    "__init__": {"app", "kept", "more", "schema", "server"},
}
INSIDE["review"] = {
    "safefs": set(),
    "runs": {"safefs"},
    "check": set(),
    "words": {"check"},  # a run's messages in an ops person's words
    "store": {"safefs"},
    "edits": {"check", "runs", "safefs", "store", "words"},
    "guard": set(),
    "preview": {"check"},
    "bulk": {"check", "edits", "runs", "store"},
    "view": {"bulk", "runs", "store"},
    "app": {"bulk", "check", "edits", "guard", "preview", "runs", "safefs", "store", "view", "words"},
    "server": {"app"},
    "__init__": {"app", "server"},
}
INSIDE["job"] = {
    "events": set(),
    "targets": {"events"},
    "reps": {"events"},
    "drift": {"events"},
    "mirror": {"events"},
    "outputs": {"events"},
    "result": set(),
    "sync": {"drift", "events", "mirror", "outputs", "reps", "result", "targets"},
    "check": {"events", "reps", "sync"},
    "spec": {"outputs", "result", "sync", "targets"},  # one job as data (JSON), no token in it
    "__init__": {"events", "outputs", "result", "sync", "targets"},
}
INSIDE["scaffold"] = {
    "match": set(),
    "preset": {"match"},
    "resource": {"match"},  # an opportunity starter: the fields an opportunity has
    "times": {"match"},  # date-time fields: date + time columns, formats, zones, `ambiguous`
    "starter": {"match", "preset", "resource", "times"},
    "__init__": {"match", "preset", "starter"},
}
LATE = {
    ("load", "model"): {"csv", "footer", "workbook"},
    ("cli", "__init__"): {"delete"},
    ("job", "sync"): {"check"},  # Sync.check_rows: the rows go through a file of their own
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
    "shtab": {"cli"},  # bulk-sync completion
    "xlsxwriter": {"report", "errorfile"},
    "watchdog": {"inbox"},  # what wakes the watcher
    "aiohttp": {"upload", "sandbox", "review"},
    "jinja2": {"review"},
    "jsonschema": {"sandbox"},
}


def stages() -> dict[str, list[Path]]:
    """Stage name -> its files: a top-level module, or every file of a subpackage."""
    out = {p.stem: [p] for p in PKG.glob("*.py")}
    for init in PKG.glob("*/__init__.py"):
        out[init.parent.name] = sorted(init.parent.glob("*.py"))
    return out


def imports(path: Path) -> tuple[set[str], set[str]]:
    """The stages this file imports (ours) and the third-party libraries (theirs)."""
    top = path.parent == PKG  # a top-level module, or a part of a subpackage
    ours, theirs = set(), set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level >= 1:
            if not top and node.level == 1:
                continue  # a sibling part: INSIDE's business
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


def parts_imported(path: Path) -> tuple[set[str], set[str]]:
    """A subpackage part's imports of its siblings: at module level, and from inside functions."""
    tree = ast.parse(path.read_text())
    top = {n.module for n in tree.body if isinstance(n, ast.ImportFrom) and n.level == 1 and n.module}
    every = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 1 and n.module}
    return top, every - top


def test_every_module_is_known() -> None:
    assert set(stages()) == set(ALLOWED)
    for package, parts in INSIDE.items():
        assert {p.stem for p in (PKG / package).glob("*.py")} == set(parts)


def test_imports_go_one_way() -> None:
    wrong = {}
    for stage, paths in stages().items():
        for path in paths:
            ours, _ = imports(path)
            extra = ours - ALLOWED[stage] - {"__init__", stage}
            if extra:
                wrong[f"{stage}/{path.stem}"] = sorted(extra)
    assert wrong == {}


def test_parts_of_a_subpackage_import_one_way() -> None:
    wrong = {}
    for package, rules in INSIDE.items():
        for path in (PKG / package).glob("*.py"):
            top, late = parts_imported(path)
            if top - rules[path.stem]:
                wrong[f"{package}.{path.stem}"] = sorted(top - rules[path.stem])
            if late - LATE.get((package, path.stem), set()):
                wrong[f"{package}.{path.stem} (late)"] = sorted(late - LATE.get((package, path.stem), set()))
    assert wrong == {}


def test_foreign_libraries_live_in_one_module() -> None:
    wrong = {}
    for stage, paths in stages().items():
        for path in paths:
            _, theirs = imports(path)
            for lib, homes in HOMES.items():
                if lib in theirs and stage not in homes:
                    wrong.setdefault(lib, []).append(stage)
    assert wrong == {}


def test_nothing_imports_the_cli() -> None:
    users = [s for s, paths in stages().items() for p in paths if "cli" in imports(p)[0] and s != "__main__"]
    assert users == []


# functions that are tables written as code (one add_argument call after another): long, not complex
DECLARATIVE = {"cli/args.py:_add_pace_and_retries"}
# Ceilings, not targets: a module is split where its concepts part, not to meet a count. The sizes
# themselves are a report: `python tests/test_architecture.py` prints the largest modules and functions.
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


def sizes() -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """Every module's lines and every function's, largest first."""
    modules, functions = [], []
    for path in sorted(PKG.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        name = path.relative_to(PKG).as_posix()
        modules.append((name, text.count("\n")))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                functions.append((f"{name}:{node.name}", (node.end_lineno or node.lineno) - node.lineno + 1))
    return sorted(modules, key=lambda m: -m[1]), sorted(functions, key=lambda f: -f[1])


def test_modules_and_functions_stay_under_their_ceilings() -> None:
    """A module is read whole, a function at a glance."""
    modules, functions = sizes()
    assert [m for m in modules if m[1] > MAX_MODULE_LINES] == []
    assert [f for f in functions if f[1] > MAX_FUNCTION_LINES and f[0] not in DECLARATIVE] == []


def test_no_function_is_graded_e_or_worse_by_radon() -> None:
    """`radon cc -n E bulk_sync` prints nothing: no function's cyclomatic complexity is above 30."""
    from radon.complexity import cc_visit

    graded = []
    for path in sorted(PKG.rglob("*.py")):
        for block in cc_visit(path.read_text(encoding="utf-8")):
            if block.complexity > 30:
                graded.append((path.relative_to(PKG).as_posix(), block.name, block.complexity))
    assert graded == []


def test_the_token_reaches_only_the_sending_stages() -> None:
    """The reading stages get ReadSettings (no token); only the run's wiring (pipeline/run.py,
    pipeline/plan.py's state lock), dispatch and upload/ see RunSettings."""
    readers = [
        *(PKG / "load").glob("*.py"),
        *(PKG / "mapping").glob("*.py"),
        *(PKG / "payload").glob("*.py"),
        *(
            PKG / "pipeline" / name
            for name in ("chunks.py", "handoff.py", "entries.py", "records.py", "work.py", "workers.py")
        ),
        *(PKG / name for name in ("report.py", "state.py", "errorfile.py", "group.py")),
    ]
    seen = [p.relative_to(PKG).as_posix() for p in readers if "RunSettings" in p.read_text(encoding="utf-8")]
    assert seen == []
    assert (
        "token" not in __import__("bulk_sync.settings", fromlist=["ReadSettings"]).ReadSettings.model_fields
    )


def test_only_load_and_mapping_touch_a_chunks_pandas_frame() -> None:
    """Chunk offers its cells as text (``cells``, ``row_cells``); pandas stays in load/ and mapping/."""
    import re

    touching = [
        p.relative_to(PKG).as_posix()
        for p in PKG.rglob("*.py")
        if p.relative_to(PKG).parts[0] not in ("load", "mapping") and re.search(r"\.frame\b", p.read_text())
    ]
    assert touching == []


if __name__ == "__main__":  # the size report
    modules, functions = sizes()
    total = sum(n for _, n in modules)
    print(f"{len(modules)} modules, {total:,} lines; the largest (ceiling {MAX_MODULE_LINES}):")
    for name, n in modules[:15]:
        print(f"  {n:5d}  {name}")
    print(f"the longest functions (ceiling {MAX_FUNCTION_LINES}):")
    for name, n in functions[:10]:
        print(f"  {n:5d}  {name}")


TESTS = Path(__file__).resolve().parent


def _modules_imported(tree: ast.AST) -> set[str]:
    """Every module a file imports, at any depth (inside functions too), and every module named by
    an import statement inside a string (code a test hands to a child `python -c`)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found |= set(re.findall(r"(?:^|[;\s])(?:from|import)\s+([A-Za-z_][\w.]*)", node.value))
    return found


def test_no_test_file_imports_another_and_helpers_come_from_one_module() -> None:
    """Shared helpers live in tests/helpers.py (fixtures in conftest.py): a test file never imports
    another test file, nor conftest (pytest loads it; importing it again makes a second copy)."""
    wrong = {}
    for path in sorted(TESTS.rglob("*.py")):
        named = {m.split(".")[0] for m in _modules_imported(ast.parse(path.read_text(encoding="utf-8")))}
        bad = sorted(m for m in named if m.startswith("test_") or m == "conftest")
        if bad:
            wrong[str(path.relative_to(TESTS))] = bad
    assert wrong == {}


def test_the_import_check_sees_what_it_must() -> None:
    code = (  # built at run time, so that this file does not name the modules itself
        "import {t}_a\nfrom {t}_b import x\ndef f():\n    from {c} import y\n"
        'CODE = "import sys; import {t}_c as t"\n'
    ).format(t="test", c="conftest")
    assert {"test_a", "test_b", "conftest", "test_c", "sys"} <= _modules_imported(ast.parse(code))


def contents_list(package: Path) -> list[str] | None:
    """The parts a subpackage's docstring lists (indented ``name   what it is`` lines after "The
    parts"), or None when it lists none."""
    doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text(encoding="utf-8"))) or ""
    if "The parts" not in doc:
        return None
    lines = doc.split("The parts", 1)[1].splitlines()[1:]
    found = [
        name
        for line in lines
        if (m := re.match(r"^    (\w+(?:, \w+)*)\s{2,}\S", line))
        for name in m.group(1).split(", ")
    ]
    return found or None  # (a list in another form is not checked)


def test_a_contents_list_names_every_part_and_no_other() -> None:
    """A subpackage's docstring that lists its parts lists them all, in an order that imports one
    way (each part imports only parts listed before it), and none that is gone."""
    wrong = {}
    for package in sorted(p.parent for p in PKG.glob("*/__init__.py")):
        listed = contents_list(package)
        if listed is None:
            continue
        parts = {p.stem for p in package.glob("*.py")} - {"__init__"}
        if set(listed) != parts or len(listed) != len(set(listed)):
            missing, gone = sorted(parts - set(listed)), sorted(set(listed) - parts)
            wrong[package.name] = {"missing": missing, "gone": gone}
            continue
        rules = INSIDE.get(package.name, {})
        for i, part in enumerate(listed):
            later = rules.get(part, set()) - set(listed[:i])
            if later:
                wrong[f"{package.name}.{part}"] = {"imports parts listed after it": sorted(later)}
    assert wrong == {}


def test_every_subpackage_ships() -> None:
    """`pip install .` (not editable, as CI and pipx install it) ships every subpackage: the
    setuptools list in pyproject.toml names each folder of bulk_sync/ that holds an __init__.py."""
    import tomllib

    listed = set(tomllib.loads((PKG.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(PKG.parent).parts) for p in PKG.rglob("__init__.py")}
    assert found - listed == set()
