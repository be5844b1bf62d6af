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
