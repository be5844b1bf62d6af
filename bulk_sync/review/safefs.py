"""Review, safefs: the page reads and writes only inside its roots (the inbox, the report folders),
and never through a symbolic link placed there: a link in ``done/`` or ``failed/`` would show an
outside file (names, SSNs) on the page, and a link where the page writes would overwrite its target.

* ``inside(path, root)``: ``path`` is under ``root`` once resolved, and no part of it below
  ``root`` is a link (checked with ``lstat``, each part);
* ``listing(folder, pattern)``: the folder's entries that are regular files, never links;
* ``create_new(folder, name, write)``: a new file, written aside (``O_CREAT|O_EXCL|O_NOFOLLOW``)
  then linked to its name (``link`` never replaces, never follows): a file already there, or a link
  planted under that name, makes it fail, never overwrite;
* ``make_dirs(root, rel)``: sub-folders created one by one, each checked not to be a link;
* ``open_plain(path, root)`` / ``opened`` / ``read_plain``: a file read once opened, never by its
  name after a check: its root, each folder below it and the file opened in turn, each relative to
  the one before and none through a link (``openat`` with ``O_NOFOLLOW``), the file a regular one;
  the descriptor is what the load stage reads (``load.held``), so what was checked is what is read
  even if the name is swapped for a link in between. (Where ``openat`` is missing, as on Windows:
  checked, then opened by name.)
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from ..load import held

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIR = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
# a FIFO put in place must not hang the read: opened without waiting, then refused (not a regular file)
_READ = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
_AT = (
    os.open in os.supports_dir_fd and bool(_NOFOLLOW) and hasattr(os, "O_DIRECTORY") and hasattr(os, "pread")
)
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


def open_plain(path: Path, root: Path) -> int:
    """``path`` (under ``root``) opened for reading, once: ``root`` and each folder below it opened
    in turn, none through a link, then the file, which must be a regular file (not a link, a FIFO,
    a device). Returns the descriptor (the caller closes it); raises OutsideRoot otherwise."""
    full = path if path.is_absolute() else root / path
    try:
        parts = full.relative_to(root).parts
    except ValueError:
        raise OutsideRoot(f"{path} is not inside {root}") from None
    if not parts or any(p in ("..", ".", "") for p in parts):
        raise OutsideRoot(f"{path} leaves {root}")
    if not _AT:  # no openat: the check, then the name (the window between them stays open here)
        if not is_plain_file(inside(full, root)):
            raise OutsideRoot(f"{full.name} is a symbolic link or not a file: not read")
        return os.open(full, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        at = os.open(root, _DIR)
    except OSError as exc:
        raise _refused(root, exc) from None
    try:
        for part in parts[:-1]:
            below = os.open(part, _DIR, dir_fd=at)
            os.close(at)
            at = below
        fd = os.open(parts[-1], _READ, dir_fd=at)
    except OSError as exc:
        raise _refused(full, exc) from None
    finally:
        os.close(at)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OutsideRoot(f"{full.name} is not a regular file: not read")
    return fd


def _refused(path: Path, exc: OSError) -> OSError:
    """A link met on the way (``O_NOFOLLOW``: ELOOP; some systems: EMLINK, or ENOTDIR for a folder)
    as OutsideRoot; any other error (gone, no permission) as it is."""
    if exc.errno in (errno.ELOOP, errno.EMLINK, errno.ENOTDIR):
        return OutsideRoot(f"{path.name} is a symbolic link, or passes through one: not followed")
    return exc


@contextlib.contextmanager
def opened(path: Path, root: Path) -> Iterator[Path]:
    """``path`` opened once (see ``open_plain``), as a path the load stage reads through the open
    file (``load.held``); closed after."""
    full = path if path.is_absolute() else root / path
    if not _AT:  # (no openat, no pread: checked, then read by its name)
        os.close(open_plain(full, root))
        yield full
        return
    fd = open_plain(full, root)
    try:
        yield held(full, fd)
    finally:
        os.close(fd)


def read_plain(path: Path, root: Path) -> bytes:
    """The bytes of ``path``, opened once under ``root`` (see ``open_plain``)."""
    fd = open_plain(path, root)
    with os.fdopen(fd, "rb") as fh:
        return fh.read()
