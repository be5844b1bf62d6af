"""Load stage, encoding: a CSV file's encoding: BOM, strict UTF-8 (UTF-8 with a few bad bytes stays
UTF-8, those rows flagged), else the one code page every plausible one agrees with; a whole-file
scan for unclosed quotes; binary content refused.
"""

from __future__ import annotations

import codecs
import csv
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..csvfields import long_fields
from ..errors import SourceError
from .headers import SNIFF_ROWS
from .model import decode_hint
from .snapshot import open_text_upto, open_upto

SAMPLE_BYTES = 256 * 1024


@dataclass(frozen=True)
class _Chosen:
    """How a CSV file is decoded: the codec, its count of quotes when already known (the whole
    file was decoded to choose it), and how many bytes are not valid in it (UTF-8 with damage)."""

    name: str
    quotes: int | None = None
    damaged: int = 0


# the code pages spreadsheet programs write CSV in ("ANSI" on Windows, and the old Mac one)
CODE_PAGES = (
    "cp1252", "cp1250", "cp1251", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "cp1258",
    "cp874", "mac_roman",
)  # fmt: skip


SURROGATES = re.compile("[\udc80-\udcff]+")  # bytes that did not decode (errors="surrogateescape")


def choose_encoding(p: Path, forced: str | None, warnings: list[str], size: int | None = None) -> _Chosen:
    """How to decode ``p``: --encoding, a BOM, UTF-8 (also when only a few bytes are not valid
    UTF-8: those rows are reported, the rest read right), else the one code page that every
    plausible one agrees with. Never a silent guess between code pages that read differently."""
    if forced:
        try:
            name = codecs.lookup(forced).name
        except LookupError as exc:
            raise SourceError(str(p), f"unknown encoding {forced!r}") from exc
        if name == "utf-8":
            return _utf8(p, "utf-8-sig", strict=True, size=size)
        return _Chosen(forced)
    with open_upto(p, 0, size) as fh:
        head = fh.read(4)
    if head.startswith(codecs.BOM_UTF8):
        return _utf8(p, "utf-8-sig", strict=False, size=size)
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)) and head != codecs.BOM_UTF16_LE + b"\0\0":
        return _Chosen("utf-32")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _Chosen("utf-16")  # Excel's "Unicode Text"; Python reads the BOM and the byte order
    try:
        return _Chosen("utf-8-sig", _scan(p, "utf-8", size))
    except UnicodeDecodeError:
        pass
    valid, bad, quotes = _utf8_profile(p, size)
    if valid and valid >= 4 * bad:  # mostly UTF-8: a few damaged bytes, not another code page
        return _Chosen("utf-8-sig", quotes, bad)
    name = _code_page(p, size)
    warnings.append(
        f"the file is not UTF-8; it was read as {name}: its characters read the same in every code "
        "page that fits it. Save it as 'CSV UTF-8' to be sure"
    )
    return _Chosen(name)


def _utf8(p: Path, name: str, *, strict: bool, size: int | None) -> _Chosen:
    """A file that is UTF-8 by its BOM or by --encoding: count the bytes that are not."""
    try:
        return _Chosen(name, _scan(p, "utf-8", size))
    except UnicodeDecodeError as exc:
        valid, bad, quotes = _utf8_profile(p, size)
        if strict and not valid:  # nothing in it is UTF-8: the flag is wrong, not a few bytes
            raise SourceError(str(p), decode_hint(exc, "utf-8")) from exc
        return _Chosen(name, quotes, bad)


def _utf8_profile(p: Path, size: int | None) -> tuple[int, int, int]:
    """(non-ASCII characters that are valid UTF-8, bytes that are not, quotes) of the whole file."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
    valid = bad = quotes = 0
    with open_upto(p, 0, size) as fh:
        while True:
            block = fh.read(1 << 20)
            text = decoder.decode(block, final=not block)
            quotes += text.count('"')
            other = len(text.encode("utf-8", "surrogateescape")) - len(text)  # > 0 only past ASCII
            if other:
                wrong = sum(len(m) for m in SURROGATES.findall(text))
                bad += wrong
                valid += len(_NON_ASCII.findall(text)) - wrong
            if not block:
                return valid, bad, quotes


_NON_ASCII = re.compile("[^\x00-\x7f]")


def _code_page(p: Path, size: int | None) -> str:
    """The code page of a file that is not UTF-8, when every plausible one reads it the same.

    Plausible: a code page spreadsheet programs write that decodes every byte of the file, and whose
    text the mess detector of charset-normalizer does not find garbled. When two plausible code
    pages turn the file's bytes into different characters, the file is refused, showing how a word
    reads in each: only a person can tell which is right.
    """
    from charset_normalizer.md import mess_ratio

    present, lines = _high_bytes(p, size)
    readings: list[tuple[str, str, float, int]] = []
    for name in CODE_PAGES:
        try:
            table = present.decode(name)
        except UnicodeDecodeError:
            continue  # a byte this code page does not define
        text = lines.decode(name, errors="replace")
        readings.append((name, table, mess_ratio(text, 1.0), _garbled_words(text)))
    if not readings:
        raise SourceError(
            str(p),
            "is not UTF-8 and no Windows code page reads it; pass --encoding or save it as 'CSV UTF-8'",
        )
    least = min(m for _, _, m, _ in readings)
    cleanest = min(g for _, _, m, g in readings if m <= max(0.3, least + 0.1))
    plausible = [(n, t) for n, t, m, g in readings if m <= max(0.3, least + 0.1) and g == cleanest]
    groups: dict[str, list[str]] = {}
    for name, table in plausible:
        groups.setdefault(table, []).append(name)
    if len(groups) == 1:
        return plausible[0][0]
    shown = [f"{word!r} as {', '.join(names)}" for word, names in _readings(lines, groups)[:4]]
    raise SourceError(
        str(p),
        "is not UTF-8, and the code pages it could be in read its characters differently: "
        + "; ".join(shown)
        + f". Pass --encoding with the right one (e.g. --encoding {plausible[0][0]}), or save the file "
        "as 'CSV UTF-8'",
    )


_WORD = re.compile(r"[^\s,;|\"()\[\]{}<>/\\:.!?+=*&^%$#@~`]+")


def _garbled_words(text: str) -> int:
    """Words (with a character past ASCII) that no language writes: letters of two scripts in one
    word (``Strauك``), or a symbol between letters (``J¸rgen``): the marks of a wrong code page."""
    count = 0
    for word in _WORD.findall(text):
        if word.isascii():
            continue
        scripts = set()
        inner = word.strip("'’‘“”\"«»-–—")
        for ch in inner:
            if ch.isalpha():
                scripts.add(unicodedata.name(ch, "?").split(" ")[0])
            elif not ch.isdigit() and ch not in "'’-":
                scripts.add("symbol")
        if len(scripts) > 1:
            count += 1
    return count


def _high_bytes(p: Path, size: int | None) -> tuple[bytes, bytes]:
    """The distinct bytes above 0x7F in the file, and up to 16 KB of the lines holding them."""
    seen: set[int] = set()
    lines: list[bytes] = []
    kept = 0
    ascii_bytes = bytes(range(128))
    with open_upto(p, 0, size) as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            high = block.translate(None, ascii_bytes)
            if not high:
                continue
            seen.update(high)
            if kept < 16384:
                for line in block.splitlines():
                    if line.translate(None, ascii_bytes) and kept < 16384:
                        lines.append(line[:2000])
                        kept += len(lines[-1])
    return bytes(sorted(seen)), b"\n".join(lines)


def _readings(lines: bytes, groups: dict[str, list[str]]) -> list[tuple[str, list[str]]]:
    """How the first cell that the groups of code pages read differently reads in each group."""
    texts = {names[0]: lines.decode(names[0], errors="replace") for names in groups.values()}
    first = next(iter(texts.values()))
    at = next(
        (i for i in range(len(first)) if len({t[i] if i < len(t) else "" for t in texts.values()}) > 1), 0
    )
    out: dict[str, list[str]] = {}
    for names in groups.values():
        text = texts[names[0]]
        start = max(text.rfind(c, 0, at) for c in ',;\t|\n"') + 1  # the cell it is in
        ends = [e for e in (text.find(c, at) for c in ',;\t|\n"') if e >= 0]
        out.setdefault(text[start : min(ends) if ends else len(text)].strip()[:40], []).extend(names)
    return list(out.items())


def _scan(p: Path, encoding: str, size: int | None = None) -> int:
    """Decode the whole file (fast, in C); return how many ``"`` it holds.

    Raises UnicodeDecodeError noting the offset of the bad byte in the file."""
    decoder = codecs.getincrementaldecoder(encoding)()
    ascii_as_is = reads_ascii_as_is(encoding)
    quotes = offset = 0
    with open_upto(p, 0, size) as fh:
        try:
            while block := fh.read(1 << 20):
                if ascii_as_is and block.isascii() and not decoder.getstate()[0]:
                    # ASCII decodes to itself: nothing to check, only the quotes to count (numpy
                    # counts them 3x faster than bytes.count)
                    quotes += int(np.count_nonzero(np.frombuffer(block, dtype=np.uint8) == QUOTE))
                else:
                    quotes += decoder.decode(block).count('"')
                offset += len(block)
            quotes += decoder.decode(b"", final=True).count('"')
        except UnicodeDecodeError as exc:
            exc.add_note(str(offset + exc.start))  # where in the file, for the message
            raise
    return quotes


QUOTE = ord('"')
NEWLINE = ord("\n")


# the codecs that decode every ASCII byte to itself, with no state: UTF-8, Latin-1, the code pages
_ASCII_AS_IS = frozenset(codecs.lookup(c).name for c in ("utf-8", "latin-1", *CODE_PAGES))


def reads_ascii_as_is(encoding: str) -> bool:
    return codecs.lookup(encoding).name in _ASCII_AS_IS


def check_whole_file(p: Path, encoding: str, quotes: int | None, size: int | None = None) -> None:
    """Every byte decodes and every quote closes, or the run stops here, before anything is sent."""
    if quotes is None:
        try:
            quotes = _scan(p, encoding, size)
        except UnicodeDecodeError as exc:
            raise SourceError(str(p), decode_hint(exc, encoding)) from exc
    if quotes % 2:
        line = _unclosed_quote_line(p, encoding, size)
        if line is not None:
            raise SourceError(
                str(p),
                f'has a quote (") that is never closed, in the record that starts on line {line}; '
                "everything after it would be read as one cell. Fix or remove that quote",
            )


def _unclosed_quote_line(p: Path, encoding: str, size: int | None) -> int | None:
    with long_fields(), open_text_upto(p, size, encoding, "surrogateescape") as fh:
        reader = csv.reader(fh, strict=True)
        start = 1
        try:
            for _ in reader:
                start = reader.line_num + 1
        except csv.Error:
            return start
    return None


SAMPLE_MAX_BYTES = 64 * 1024 * 1024  # a header line longer than this is no spreadsheet export


def sample_text(p: Path, encoding: str, size: int | None = None) -> str:
    """The first lines of the file (whole lines, at least SNIFF_ROWS of them when the file has
    them): SAMPLE_BYTES, or more when the lines are very long (a wide file)."""
    want = SAMPLE_BYTES
    with open_upto(p, 0, size) as fh:
        raw = fh.read(want)
        while raw.count(b"\n") < SNIFF_ROWS and len(raw) == want and want < SAMPLE_MAX_BYTES:
            more_bytes = fh.read(want)  # double the sample until it holds enough whole lines
            raw += more_bytes
            want = len(raw)
            if not more_bytes:
                break
        more = bool(fh.read(1))
    if more and b"\n" not in raw:
        raise SourceError(
            str(p),
            f"its first line is longer than {SAMPLE_MAX_BYTES // 1024**2} MB: it is not a CSV export "
            "bulk_sync can read (check the delimiter, or export fewer columns)",
        )
    text = codecs.getincrementaldecoder(encoding)(errors="surrogateescape").decode(raw, final=not more)
    if more and "\n" in text:
        text = text[: text.rindex("\n") + 1]  # whole lines only
    return text.removeprefix("\ufeff")


def has_nul(p: Path, encoding: str, size: int | None) -> bool:
    """Whether a NUL character is in the file (its rows are then flagged: cells.flag_nul). Byte 0
    is one in an encoding that reads ASCII as is; in UTF-16/32 the cells are looked at."""
    if not reads_ascii_as_is(encoding.replace("-sig", "")):
        return True
    with open_upto(p, 0, size) as fh:
        return any(b"\x00" in block for block in iter(lambda: fh.read(1 << 20), b""))


def refuse_binary(p: Path, sample: str) -> None:
    """Refuse a file whose start is mostly not text (control characters, NUL bytes among them, as
    in UTF-16 without a BOM or any binary format). A few NUL bytes in a text file are not this:
    the rows holding them are reported invalid, wherever they are (cells.flag_nul)."""
    control = sum(1 for ch in sample[:65536] if ch < " " and ch not in "\t\r\n")
    if control > max(8, len(sample[:65536]) // 100):
        raise SourceError(
            str(p),
            "is not a text file (binary content); expected CSV, .xlsx, .xls or .ods "
            "(for UTF-16 without a byte-order mark, pass --encoding utf-16-le)",
        )
