"""bulk_sync: load CRM appointment spreadsheets (CSV/Excel) into SIRO's External API.

The job API (see the manual's "Python API" page)::

    import bulk_sync as bs

    sync = bs.Sync("mappings/engagements.yaml", bs.Siro(token=token), state="state.sqlite")
    result = sync.run(["export.csv"], outputs=bs.Outputs(report="reports/export.csv"))
    result.counts, result.exit_code

The names below are imported when first used, so that ``import bulk_sync`` (and the command
line's first line) stays fast.
"""

from __future__ import annotations

import logging as _logging
import typing as _typing

__version__ = "0.1.0"

# a library stays silent unless the application sets up logging (the CLI: --log-file)
_logging.getLogger(__name__).addHandler(_logging.NullHandler())

if _typing.TYPE_CHECKING:
    from .errors import (
        AuthError,
        BulkSyncError,
        CallFailed,
        ConfigError,
        FatalError,
        FileChanged,
        Held,
        Interrupted,
        MappingError,
        NotSiro,
        OutputError,
        ServerUnavailable,
        SourceError,
        StartError,
        StateError,
        TokenRefused,
        Unreachable,
        UsageError,
    )
    from .job import (
        CheckedRow,
        Delivery,
        Events,
        Guards,
        Mirror,
        Outputs,
        Reading,
        Sandbox,
        Siro,
        Sync,
        SyncResult,
    )
    from .settings import RetryPolicy, Timeouts

__all__ = [
    "AuthError",
    "BulkSyncError",
    "CallFailed",
    "CheckedRow",
    "ConfigError",
    "Delivery",
    "Events",
    "FatalError",
    "FileChanged",
    "Guards",
    "Held",
    "Interrupted",
    "MappingError",
    "Mirror",
    "NotSiro",
    "OutputError",
    "Outputs",
    "Reading",
    "RetryPolicy",
    "Sandbox",
    "ServerUnavailable",
    "Siro",
    "SourceError",
    "StartError",
    "StateError",
    "Sync",
    "SyncResult",
    "Timeouts",
    "TokenRefused",
    "Unreachable",
    "UsageError",
    "__version__",
]
_JOB = (
    "CheckedRow",
    "Delivery",
    "Events",
    "Guards",
    "Mirror",
    "Outputs",
    "Reading",
    "Sandbox",
    "Siro",
    "Sync",
    "SyncResult",
)
_HOME = {
    **dict.fromkeys(_JOB, "job"),
    "RetryPolicy": "settings",
    "Timeouts": "settings",
}  # the rest of __all__ lives in errors


def __getattr__(name: str) -> _typing.Any:
    if name not in __all__:
        raise AttributeError(f"module 'bulk_sync' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{_HOME.get(name, 'errors')}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
