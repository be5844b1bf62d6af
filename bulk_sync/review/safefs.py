"""Review, safefs: the page reads and writes only inside its roots (the inbox, the report folders),
and never through a symbolic link placed there: a link in ``done/`` or ``failed/`` would show an
outside file (names, SSNs) on the page, and a link where the page writes would overwrite its target.

* ``inside(path, root)``: ``path`` is under ``root`` once resolved, and no part of it below
  ``root`` is a link (checked with ``lstat``, each part);
* ``listing(folder, pattern)``: the folder's entries that are regular files, never links;
* ``create_new(folder, name, write)``: a new file, written aside (``O_CREAT|O_EXCL|O_NOFOLLOW``)
  then linked to its name (``link`` never replaces, never follows): a file already there, or a link
  planted under that name, makes it fail, never overwrite;
* ``make_dirs(root, rel)``: sub-folders created one by one, each checked not to be a link.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


class OutsideRoot(OSError):
    """A path that leaves its root, or passes through a link."""


def inside(path: Path, root: Path) -> Path:
    """``path`` itself (absolute) when it stays under ``root`` without a link on the way; else raise."""
    root = root.resolve()
    full = path if path.is_absolute() else root / path
    try:
        rel = full.relative_to(root)
    except ValueError:
        raise OutsideRoot(f"{path} is not inside {root}") from None
    here = root
    for part in rel.parts:
        if part in ("..", ""):
            raise OutsideRoot(f"{path} leaves {root}")
        here = here / part
        try:
            if stat.S_ISLNK(os.lstat(here).st_mode):
                raise OutsideRoot(f"{here} is a symbolic link: not followed")
        except FileNotFoundError:
            break  # the rest does not exist yet (it is about to be created)
    if not full.resolve().is_relative_to(root):
        raise OutsideRoot(f"{path} is not inside {root}")
    return full


def is_plain_file(path: Path) -> bool:
    """A regular file, not a link (to a file or anywhere else)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def is_plain_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def listing(folder: Path, pattern: str) -> Iterator[Path]:
    """``folder``'s entries matching ``pattern`` that are regular files (links are skipped)."""
    if not is_plain_dir(folder):
        return
    for p in folder.glob(pattern):
        if is_plain_file(p):
            yield p


def make_dirs(root: Path, rel: str) -> Path:
    """``root/rel``, its folders created one at a time, none of them a link."""
    here = root.resolve()
    for part in Path(rel).parts:
        if part in ("..", "/", ""):
            raise OutsideRoot(f"{rel} leaves {root}")
        here = here / part
        with contextlib.suppress(FileExistsError):
            os.mkdir(here)
        if not is_plain_dir(here):
            raise OutsideRoot(f"{here} is a symbolic link or not a folder: not followed")
    return here


def create_new(folder: Path, name: str, write: Callable[[IO[bytes]], None]) -> Path:
    """``folder/name``, a new file: written aside under a name no one can guess, then linked into
    place. Raises FileExistsError when the name is taken (by a file or a link)."""
    if not is_plain_dir(folder):
        raise OutsideRoot(f"{folder} is a symbolic link or not a folder: not written")
    part = folder / f".{name}.{secrets.token_hex(6)}.part"  # ignored by the watcher (a dot, .part)
    fd = os.open(part, NEW, 0o644)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.link(part, folder / name, follow_symlinks=False)  # never replaces what is there
    finally:
        with contextlib.suppress(OSError):
            os.unlink(part)
    return folder / name
