"""Config file with profiles: ``bulk_sync.toml``.

    [profiles.default]                 # used when no --profile is given
    base_url = "https://functions.siro.ai/api-externalApi"
    token_env = "SIRO_API_TOKEN"       # or: token_file = "/etc/bulk_sync/token"
    mapping = "mappings/engagements.yaml"
    report_dir = "reports"

    [profiles.nightly]
    rate_per_min = 600
    concurrency = 4
    max_failures = "2%"
    notify_url = "https://hooks.slack.com/services/..."

Where: ``--config PATH``, else ``$BULK_SYNC_CONFIG``, else ``./bulk_sync.toml`` when it exists.
A profile gives defaults; flags on the command line override them. Unknown keys, wrong types and
unknown profiles are errors (exit 2), reported with the file and the key.
"""

from __future__ import annotations

import difflib
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import UsageError

_M = TypeVar("_M", bound=BaseModel)
DEFAULT_NAME = "bulk_sync.toml"
ENV = "BULK_SYNC_CONFIG"


class Profile(BaseModel):
    """The keys a profile may set; each is the default of the flag with the same name."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    base_url: str | None = None
    allow_insecure_http: bool | None = None
    token_env: str | None = None
    token_file: str | None = None
    ca_bundle: str | None = None
    mapping: str | None = None
    report_dir: str | None = None
    report_xlsx: bool | None = None
    state: str | None = None
    rate_per_min: float | int | None = Field(default=None, ge=0)
    concurrency: int | None = Field(default=None, ge=1)
    batch_size: Annotated[int, Field(ge=1, le=10_000)] | Literal["auto"] | None = None
    no_batch: bool | None = None
    max_attempts: int | None = Field(default=None, ge=1)
    circuit_breaker: int | None = Field(default=None, ge=0)
    max_failures: str | int | None = None
    notify_url: str | None = None
    notify_on: str | None = None
    log_file: str | None = None
    log_level: str | None = None
    log_format: str | None = None
    sheet: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    require_known_reps: bool | None = None
    no_rep_check: bool | None = None
    mirror: bool | None = None
    mirror_max_days: float | int | None = Field(default=None, gt=0)
    mirror_max_removed: str | float | None = None
    mirror_window: str | None = None  # "-7d..+30d" (relative to the run, in the job's time zone) or FROM..TO


def config_path(flag: str | None, env: Mapping[str, str]) -> Path | None:
    """The config file: ``flag`` (--config), else ``$BULK_SYNC_CONFIG`` in ``env`` (the caller's
    environment: the CLI passes ``os.environ``), else ``./bulk_sync.toml`` when it exists."""
    if flag:
        return Path(flag)
    if env.get(ENV):
        return Path(env[ENV])
    here = Path(DEFAULT_NAME)
    return here if here.is_file() else None


def load_profile(path: Path | None, name: str | None) -> dict[str, Any]:
    """The profile's settings (only the keys it sets). {} when there is no config file and no
    --profile. Raises UsageError for a missing file, bad TOML, unknown keys or profile."""
    if path is None:
        if name:
            raise UsageError(
                f"--profile {name!r} given, but there is no config file (--config or ./{DEFAULT_NAME})"
            )
        return {}
    data = _read(path)
    unknown = set(data) - {"profiles", "watch"}
    if unknown:
        raise UsageError(
            f"{path}: unknown top-level key(s) {sorted(unknown)}; put settings under [profiles.NAME]"
        )
    profiles = data.get("profiles", {})
    if not isinstance(profiles, dict) or not all(isinstance(v, dict) for v in profiles.values()):
        raise UsageError(f"{path}: [profiles.NAME] tables expected")
    if name is None:
        if "default" not in profiles:
            return {}
        name = "default"
    if name not in profiles:
        raise UsageError(f"{path}: no profile {name!r}; it has: {', '.join(sorted(profiles)) or 'none'}")
    return _validate(Profile, profiles[name], f"{path} [profiles.{name}]").model_dump(exclude_none=True)


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise UsageError(f"cannot read the config file {path}: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from exc


def _validate(model: type[_M], data: Any, where: str) -> _M:
    """``model`` from ``data``, or a UsageError naming every bad key in plain words: an unknown key
    with the nearest known one ("did you mean"), a value of the wrong kind with the kind expected."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems: dict[str, str] = {}
        for e in exc.errors(include_url=False):
            key = str(e["loc"][0]) if e["loc"] else "?"
            problems.setdefault(key, _problem(model, key, e))  # a union's members: one line a key
        raise UsageError(f"{where}: " + "; ".join(f"{k}: {v}" for k, v in problems.items())) from exc


def _problem(model: type[BaseModel], key: str, e: Any) -> str:
    if e["type"] == "extra_forbidden":
        near = difflib.get_close_matches(key, list(model.model_fields), n=1, cutoff=0.6)
        return "unknown key" + (f" (did you mean {near[0]!r}?)" if near else "")
    field = model.model_fields.get(key)
    if e["type"].endswith("_type") and field is not None:
        return f"expected {_kind(field.annotation)}, got {e['input']!r}"
    msg = str(e["msg"]).removeprefix("Input ")
    return f"{msg} (got {e['input']!r})"


_KINDS = {str: "text", bool: "true or false", int: "a whole number", float: "a number"}


def _kind(annotation: Any) -> str:
    """A field's type in words: ``float | int | None`` -> "a number"."""
    kinds = [k for k in typing.get_args(annotation) or (annotation,) if k is not type(None)]
    words = list(dict.fromkeys(_KINDS.get(k, getattr(k, "__name__", str(k))) for k in kinds))
    if "a number" in words and "a whole number" in words:
        words.remove("a whole number")
    if len(words) == 1 and not words[0].startswith(("a ", "true")):
        return words[0] if words[0] != "text" else "text in quotes"
    return " or ".join("text in quotes" if w == "text" else w for w in words)


class WatchSection(BaseModel):
    """``[watch]``: how the folder is watched, and ``[[watch.routes]]``: which mapping for which file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    settle_seconds: float | None = Field(default=None, gt=0)
    poll_seconds: float | None = Field(default=None, gt=0)
    routes: list[dict[str, Any]] = []


def load_watch(path: Path | None) -> WatchSection:
    """The ``[watch]`` table of the config file (empty when there is none)."""
    if path is None:
        return WatchSection()
    return _validate(WatchSection, _read(path).get("watch", {}), f"{path} [watch]")
