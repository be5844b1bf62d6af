"""Large maps load fast (issue 34): the mapping's YAML is composed by libyaml's C parser where PyYAML
has it, with the same safe checks (no tags, no alias bombs), and built in a tight loop that gives
exactly what PyYAML's safe loader gives. The figure itself: tests/benchmarks/bench_mapping_load.py
(not a timed test)."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml

from bulk_sync.errors import MappingError
from bulk_sync.mapping import parse_mapping, yamlsafe
from bulk_sync.payload import target_catalog


def test_the_c_parser_composes_the_mapping_where_pyyaml_has_it() -> None:
    assert yaml.__with_libyaml__, "this PyYAML has no libyaml: the pure Python parser is used"
    assert yamlsafe.SAFE_LOADER is yaml.CSafeLoader
    node = yamlsafe.compose("version: 1\nfields:\n  externalId: Id\n", "m.yaml")
    assert node.value[1][0].start_mark.line == 1  # the marks the messages use


TRICKY = """\
base: &base {a: 1, b: [x, y], c: null}
numbers: [1, 1.5, 0x1F, -2, .inf]
flags: [yes, no, true, Off]
when: 2026-10-25
stamp: 2026-10-25 02:30:00
text: ["012", '1e3', "TODO later", ~]
shared: [*base, *base]
? [complex, key]
: unhashable
"""


def test_the_fast_build_gives_what_pyyaml_gives() -> None:
    docs = TRICKY.split("? [complex")[0]
    node = yamlsafe.compose(docs, "t.yaml")
    assert yamlsafe.construct(node) == yaml.safe_load(docs)
    built = yamlsafe.construct(node)
    assert built["shared"][0] == {"a": 1, "b": ["x", "y"], "c": None} and built["text"][0] == "012"
    assert built["when"] == dt.date(2026, 10, 25) and built["flags"] == [True, False, True, False]
    # a key that is a list: PyYAML's own construction, which refuses it with its line
    with pytest.raises(yaml.YAMLError, match="unhashable"):
        yamlsafe.construct(yamlsafe.compose(TRICKY, "t.yaml"))
    # a structure that holds itself
    looped = yamlsafe.construct(yamlsafe.compose("a: &x [1, *x]\n", "l.yaml"))
    assert looped["a"][1] is looped["a"]


def test_the_safe_limits_hold_with_the_c_parser() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    with pytest.raises(MappingError, match="expands to"):
        parse_mapping("version: 1\nfields:\n  externalId: Id\nx:\n" + _indent(bomb), target_catalog(), "b")
    with pytest.raises(MappingError, match="is not allowed in a mapping file"):
        parse_mapping(
            'version: 1\ndescription: !!python/object/apply:os.system ["echo hi"]\n'
            "fields:\n  externalId: Id\n",
            target_catalog(),
            "t",
        )


def _indent(text: str) -> str:
    return "".join("  " + line + "\n" for line in text.splitlines())


@pytest.mark.slow
def test_a_map_of_100000_entries_loads_whole_and_its_problems_keep_their_lines() -> None:
    entries = "".join(f'      "C{i:06d}": "Subject {i}"\n' for i in range(100_000))
    text = (
        "version: 1\nfields:\n  externalId: {column: Id, required: true}\n"
        "  subject:\n    column: Code\n    map:\n"
    )
    spec = parse_mapping(text + entries, target_catalog(), "big.yaml")
    subject = next(f for f in spec.fields if f.target == "subject")
    assert subject.spec.map is not None and len(subject.spec.map) == 100_000
    assert subject.spec.map["C099999"] == "Subject 99999"
    bad = text + entries + "      C100000: {nested: 1}\n"
    with pytest.raises(MappingError) as err:
        parse_mapping(bad, target_catalog(), "big.yaml")
    assert "line 100007" in str(err.value)
    todo = text + entries.replace('"Subject 500"', "TODO", 1)
    with pytest.raises(MappingError, match=r"line 507: fields\.subject\.map\.C000500: TODO left"):
        parse_mapping(todo, target_catalog(), "big.yaml")
