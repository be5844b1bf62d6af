"""`bulk_sync.__all__` is honest (as httpx's test of the same name keeps its own): every name in it
resolves to a documented object of the package, the list is sorted, and no public name of the
package is left out of it."""

from __future__ import annotations

import inspect
import subprocess
import sys

import bulk_sync


def test_all_is_sorted_and_resolves() -> None:
    assert bulk_sync.__all__ == sorted(bulk_sync.__all__)
    for name in bulk_sync.__all__:
        value = getattr(bulk_sync, name)
        if name == "__version__":
            assert isinstance(value, str)
            continue
        assert value.__module__.startswith("bulk_sync."), name
        assert inspect.getdoc(value), f"{name} has no docstring"


def test_no_public_name_is_left_out() -> None:
    for name in bulk_sync.__all__:
        getattr(bulk_sync, name)  # each one loaded, so that vars() holds them all
    public = {
        name
        for name, value in vars(bulk_sync).items()
        if not name.startswith("_") and not inspect.ismodule(value) and name != "annotations"
    }
    assert public == set(bulk_sync.__all__) - {"__version__"}


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        bulk_sync.Synk  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "Synk" in str(exc)
    else:
        raise AssertionError("bulk_sync.Synk resolved")


def test_import_bulk_sync_stays_light() -> None:
    """`import bulk_sync` (the CLI's first line imports it) loads no pandas, no httpx: the API's
    names are imported when first used."""
    code = (
        "import sys, bulk_sync; print(sorted(m for m in ('pandas', 'httpx', 'aiohttp') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    code = "import bulk_sync as b; b.Sync; import sys; print('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"


def test_each_name_is_fetched_from_the_module_that_defines_it() -> None:
    """The lazy table (`_HOME`, `_JOB`) agrees with the packages: the job API's names are exactly
    `bulk_sync.job.__all__`, and every name of `__all__` is the object its home module defines
    (an error class from `bulk_sync.errors`, a setting from `bulk_sync.settings`), so a name added to
    one list and not the other fails here, not at a user's first `getattr`."""
    import bulk_sync.errors
    import bulk_sync.job

    assert set(bulk_sync._JOB) == set(bulk_sync.job.__all__)
    for name in bulk_sync.__all__:
        if name == "__version__":
            continue
        home = bulk_sync._HOME.get(name, "errors")
        module = sys.modules.get(f"bulk_sync.{home}") or __import__(f"bulk_sync.{home}", fromlist=[name])
        assert getattr(bulk_sync, name) is getattr(module, name), name
        assert home != "errors" or issubclass(getattr(bulk_sync, name), bulk_sync.errors.BulkSyncError), name
