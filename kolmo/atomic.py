"""Atomic writes: the one home of how ``kolmo`` (and ``closure``/``coupling``) publish a file.

A file that looks finished is finished. Every output is first written under a temporary name in
the same folder and only renamed to its final name once complete, so a crash, a Ctrl-C or a full
disk leaves at most a temporary file whose name says so, never a truncated file under the final
name. Two kinds of temporary names:

* ``NAME.partial`` (:func:`partial_path`): long, resumable jobs (run files, datasets) that keep
  their unfinished work there on purpose; see :mod:`kolmo.io` and :mod:`kolmo.dataset`.
* ``.NAME.<random>.partial<suffix>`` (:func:`atomic_output`): everything else (JSON reports,
  figures, checkpoints, exported artifacts). Hidden, unique per writer, removed on any failure;
  the original suffix is kept last so writers that infer the format from it (matplotlib) work.

Publishing either replaces the target (``overwrite=True``: checkpoints, reports the command owns)
or never replaces an existing file (``overwrite=False``: hard link then unlink, so a file that
appears meanwhile is not clobbered; :class:`~kolmo.errors.OutputExistsError`).

Torch-free; the writers (``torch.save``, ``fig.savefig``, ``h5py``) are called by the caller on
the temporary path.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from kolmo.errors import OutputExistsError

__all__ = ["PARTIAL", "partial_path", "is_temporary", "temporary_path", "atomic_output", "publish", "write_bytes", "write_text",
           "write_json"]

PARTIAL = ".partial"
"""Marker every temporary name carries."""


def partial_path(path: str | os.PathLike) -> Path:
    """``NAME.partial``: the temporary name of a resumable output (run file, dataset) while it is written."""
    p = Path(path)
    return p.with_name(p.name + PARTIAL)


def is_temporary(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a temporary name of this module (an unfinished output)."""
    name = Path(path).name
    return name.endswith(PARTIAL) or f"{PARTIAL}-" in name or (name.startswith(".") and PARTIAL in name)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - exotic file systems
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def publish(tmp: str | os.PathLike, out: str | os.PathLike, *, overwrite: bool = True) -> Path:
    """Move the finished temporary ``tmp`` to ``out`` (same folder) in one step.

    ``overwrite=False`` never replaces an existing ``out`` (hard link, then unlink ``tmp``; a plain
    rename after an existence check where hard links are not supported) and raises
    :class:`~kolmo.errors.OutputExistsError` after removing ``tmp``.
    """
    tmp, out = Path(tmp), Path(out)
    _fsync(tmp)
    if overwrite:
        os.replace(tmp, out)
        return out
    try:
        os.link(tmp, out)
    except FileExistsError:
        tmp.unlink(missing_ok=True)
        raise OutputExistsError(f"{out} already exists (it appeared while writing); not overwritten") from None
    except OSError:  # file systems without hard links
        if out.exists():
            tmp.unlink(missing_ok=True)
            raise OutputExistsError(f"{out} already exists; not overwritten") from None
        os.replace(tmp, out)
        return out
    tmp.unlink()
    return out


def temporary_path(path: str | os.PathLike, suffix: str | None = None) -> Path:
    """Create and return an empty, unique temporary file ``.STEM.<random>.partial<SUFFIX>`` beside
    ``path`` (``SUFFIX``: ``suffix`` or the suffix of ``path``). The caller writes it, then calls
    :func:`publish` (or removes it)."""
    out = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=PARTIAL + (out.suffix if suffix is None else suffix),
                                dir=out.parent)
    os.close(fd)
    os.chmod(name, 0o666 & ~_umask())  # mkstemp makes 0600; give the result the usual permissions
    return Path(name)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a fresh temporary path beside ``path``; publish it as ``path`` when the block succeeds.

    The block writes the complete file to the yielded path (any writer). On any exception
    (``KeyboardInterrupt`` included) the temporary file is removed and the exception propagates;
    ``path`` is untouched. ``overwrite=False`` refuses an existing ``path`` before and after the
    block (:class:`~kolmo.errors.OutputExistsError`).

    Example
    -------
    >>> with atomic_output("fig.png") as tmp:        # doctest: +SKIP
    ...     fig.savefig(tmp)
    """
    out = Path(path)
    if not overwrite and out.exists():
        raise OutputExistsError(f"{out} already exists; not overwritten")
    tmp = temporary_path(out)
    try:
        yield tmp
        publish(tmp, out, overwrite=overwrite)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike, data: bytes, *, overwrite: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_output`)."""
    with atomic_output(path, overwrite=overwrite) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str, *, overwrite: bool = True) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_output`)."""
    return write_bytes(path, text.encode("utf-8"), overwrite=overwrite)


def write_json(path: str | os.PathLike, obj: Any, *, overwrite: bool = True, **dumps: Any) -> Path:
    """Serialise ``obj`` (``json.dumps(obj, **dumps)``, ``indent=1`` unless given) and write it to
    ``path`` atomically. Serialisation happens first, so an unserialisable object leaves no file."""
    dumps.setdefault("indent", 1)
    return write_text(path, json.dumps(obj, **dumps), overwrite=overwrite)
