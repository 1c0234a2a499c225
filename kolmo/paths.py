"""User-named paths, checked before any work: an output location that can be written, an input file
that exists and is a file.

Each check raises :class:`~kolmo.errors.PathError` naming the option, the path and the reason
(a parent that is a regular file, no permission, a folder where a file is expected), so a long job
never fails at its first write. Writability is tested by creating (and removing) a probe file in
the nearest existing folder, which also holds for root and read-only mounts.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from kolmo.errors import FileFormatError, PathError

__all__ = ["writable_output", "existing_file", "existing_folder"]


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return candidate
    return Path(".")  # pragma: no cover - the root always exists


def writable_output(path: str | os.PathLike, option: str = "--out", folder: bool = False) -> Path:
    """Check that ``path`` can be created: every existing ancestor is a folder and the nearest one
    is writable; an existing ``path`` is a file (or, with ``folder``, a folder). Returns ``path``.

    Nothing is created except a probe file that is removed at once. Whether an existing ``path``
    may be replaced is the caller's decision (:class:`~kolmo.errors.OutputExistsError`).
    """
    p = Path(path)
    where = f"{option} {str(p)!r}"
    if os.path.lexists(p):
        if folder and not p.is_dir():
            raise PathError(f"{where} is a file; expected a folder (or a name that does not exist yet)")
        if not folder and p.is_dir():
            raise PathError(f"{where} is a folder; expected a file name")
    parent = _nearest_existing(p.parent if not folder or not p.exists() else p)
    if not parent.is_dir():
        raise PathError(f"{where}: {str(parent)!r} is a regular file, not a folder; expected a path under a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".kolmo-probe-", dir=parent)
    except OSError as exc:
        raise PathError(f"{where}: cannot write in folder {str(parent)!r} ({exc.strerror or exc}); expected a "
                        "writable location") from None
    os.close(fd)
    os.unlink(probe)
    return p


def existing_file(path: str | os.PathLike, option: str, what: str = "file") -> Path:
    """Check that the input ``path`` exists and is a readable regular file. Returns ``path``.

    A missing file raises :class:`~kolmo.errors.FileFormatError` (``does not exist``), a folder or
    an unreadable file :class:`~kolmo.errors.PathError`.
    """
    p = Path(path)
    if not p.exists():
        raise FileFormatError(f"{option} {str(p)!r}: {what} does not exist")
    if p.is_dir():
        raise PathError(f"{option} {str(p)!r} is a folder; expected a {what}")
    try:
        with open(p, "rb"):
            pass
    except OSError as exc:
        raise PathError(f"{option} {str(p)!r}: cannot read the {what} ({exc.strerror or exc})") from None
    return p


def existing_folder(path: str | os.PathLike, option: str, what: str = "folder") -> Path:
    """Check that the input ``path`` exists and is a folder (missing: :class:`~kolmo.errors.FileFormatError`;
    a regular file: :class:`~kolmo.errors.PathError`). Returns ``path``."""
    p = Path(path)
    if not p.exists():
        raise FileFormatError(f"{option} {str(p)!r}: {what} does not exist")
    if not p.is_dir():
        raise PathError(f"{option} {str(p)!r} is a regular file; expected a {what} (a folder)")
    return p
