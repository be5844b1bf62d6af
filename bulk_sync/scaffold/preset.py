"""init-mapping, preset: the shipped presets, and the one a file's headers fit (every column it reads,
its optional ones aside).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from .match import norm

PRESET_SHARE = 0.6  # a preset "looks like" the file from this share of its columns on


@dataclass
class Preset:
    name: str
    text: str
    needed: set[str] = field(default_factory=set)  # the columns it must find
    optional: set[str] = field(default_factory=set)
    resource: str = "engagements"


def presets() -> list[Preset]:
    """The shipped presets (package data, or the checkout's mappings/ folder)."""
    texts: dict[str, str] = {}
    try:
        for p in resources.files("bulk_sync.presets").iterdir():
            if p.name.endswith(".yaml"):
                texts[p.name[:-5]] = p.read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        folder = Path(__file__).resolve().parents[2] / "mappings"  # bulk_sync/scaffold/ -> the checkout
        for p in sorted(folder.glob("*.yaml")):
            texts[p.stem] = p.read_text(encoding="utf-8")
    out = []
    for name, text in sorted(texts.items()):
        if name == "engagements":
            continue  # the example file's mapping, not an export's
        data = yaml.safe_load(text)
        preset = Preset(name, text, resource=str(data.get("resource") or "engagements"))
        for spec in (data.get("fields") or {}).values():
            spec = {"column": spec} if isinstance(spec, str) else spec
            cols = (
                [spec["column"]]
                if "column" in spec
                else re.findall(r"\{([^{}]+)\}", spec.get("template", ""))
            )
            (preset.optional if spec.get("optional") else preset.needed).update(cols)
        preset.needed.update(r["column"] for r in data.get("skip") or [])
        preset.optional -= preset.needed
        out.append(preset)
    return out


def best_preset(headers: Sequence[str], resource: str | None = None) -> tuple[Preset, set[str]] | None:
    """The preset that reads the most of these headers, with the columns it needs and the file lacks
    (empty: it fits); None when none looks like the file. ``resource``: only presets of it."""
    have = {norm(h) for h in headers}
    best: tuple[float, Preset, set[str]] | None = None
    for preset in presets():
        if resource is not None and preset.resource != resource:
            continue
        missing = {c for c in preset.needed if norm(c) not in have}
        share = 1 - len(missing) / max(1, len(preset.needed))
        if share >= PRESET_SHARE and (best is None or share > best[0]):
            best = (share, preset, missing)
    return (best[1], best[2]) if best else None


AMBIGUOUS_NOTE = (
    "# ambiguous: error: a time in the hour that happens twice when the clocks go back (in a zone\n"
    "# with daylight saving) makes its row invalid. Write earlier or later only if you know which\n"
    "# of the two instants the export means."
)


def from_preset(preset: Preset, label: str) -> str:
    """The preset as a starter: its time zones become TODOs (only the person knows the export's),
    UTC aside (columns whose times carry their own offset); a time in the repeated hour of a zone
    with daylight saving is refused (``ambiguous: error``), written on each such time."""
    text = re.sub(
        r"^(.*?timezone:\s*)(?!UTC\b)[A-Za-z_/+-]+(\s*[,}]|\s*$)", _zone_todo, preset.text, flags=re.M
    )
    head = [
        f"# Starter mapping for {label},",
        f"# written by `bulk-sync init-mapping`: the file has every column the preset {preset.name!r}",
        "# reads, so this is that preset. TODO marks what only you can decide: `validate` and `run`",
        "# refuse the file until every TODO is replaced.",
    ]
    if "ambiguous: error" in text:
        head.append(AMBIGUOUS_NOTE)
    return "\n".join(head) + "\n" + text


def _zone_todo(m: re.Match[str]) -> str:
    """``timezone: TODO``, with ``ambiguous: error`` where the datetime is a flow mapping (a local
    time, startTimeLocalized, has no instant to choose)."""
    flow = m.group(2).strip().startswith(("}", ","))
    end = m.string.find("\n", m.start())
    line = m.string[m.start() : end if end >= 0 else None]
    said = "ambiguous:" in line  # a preset that already says which instant it takes
    extra = ", ambiguous: error" if flow and not said and "startTimeLocalized" not in m.group(1) else ""
    return f"{m.group(1)}TODO{extra}{m.group(2)}"
