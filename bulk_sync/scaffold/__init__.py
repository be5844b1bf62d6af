"""``bulk-sync init-mapping FILE``: a starter mapping for a sample export.

Two ways, tried in order:

* **a preset fits**: when the file has every column a preset reads (its optional ones aside), the
  starter *is* that preset, with the decisions only the person can make left as ``TODO`` (the
  time zone of the export's times);
* **otherwise** the headers are matched to SIRO fields by synonyms (and by what the cells hold:
  an id column is unique and never empty, a "Name (email)" column gives a rep's email and name, a
  date column beside a time column makes one start, a duration column makes the end), date formats
  are read from up to 1,000 rows (a few bad cells do not drop a format; a day/month order that
  the cells cannot settle is a ``TODO``), and enum columns get a ``map`` of the values found.

Audit columns ("Created", "Last modified", "Update time") are never taken for the start or end.
Whatever is left for the person is a ``TODO`` *value*, which ``validate`` and ``run`` refuse (exit
2, listing each with its line), so a starter cannot be run by accident with a guess in it.

Every date-time with a zone gets ``ambiguous: error`` (a time in the repeated hour is refused, never
guessed). ``--resource opportunities`` keeps what an opportunity has, under its names.

The parts, one way: ``match`` (headers to fields, formats and values read from the cells),
``preset`` (which shipped preset fits), ``resource`` (an opportunity starter), ``times`` (the
date-time fields), ``starter`` (the YAML written).
"""

from __future__ import annotations

from .match import guess_formats, match_headers
from .preset import Preset, best_preset, presets
from .starter import starter

__all__ = ["Preset", "best_preset", "guess_formats", "match_headers", "presets", "starter"]
