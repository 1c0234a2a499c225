"""kolmo.atomic: a file under its final name is always complete; failures leave the old file and no debris."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from kolmo.atomic import atomic_output, is_temporary, partial_path, write_json, write_text
from kolmo.errors import OutputExistsError


def test_write_json_publishes_a_complete_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    out = write_json(tmp_path / "m.json", {"a": 1})
    assert json.loads(out.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o666 & ~mask  # like any file the user writes, not mkstemp's 0600


@pytest.mark.parametrize("failure", [RuntimeError("writer crashed"), KeyboardInterrupt()])
def test_a_failed_or_interrupted_write_keeps_the_old_file_byte_for_byte(tmp_path: Path, failure: BaseException) -> None:
    out = tmp_path / "fig.png"
    out.write_bytes(b"old")
    with pytest.raises(type(failure)):
        with atomic_output(out) as tmp:
            assert tmp.parent == tmp_path and tmp.suffix == ".png" and is_temporary(tmp)
            tmp.write_bytes(b"half of a new fi")
            raise failure
    assert out.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["fig.png"]


def test_unserialisable_json_leaves_no_file(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        write_json(tmp_path / "m.json", {"a": object()})
    assert list(tmp_path.iterdir()) == []


def test_no_overwrite_refuses_an_existing_file_before_and_after_writing(tmp_path: Path) -> None:
    out = tmp_path / "a.pt"
    out.write_text("mine")
    with pytest.raises(OutputExistsError, match="already exists"):
        write_text(out, "theirs", overwrite=False)
    fresh = tmp_path / "b.pt"
    with pytest.raises(OutputExistsError):
        with atomic_output(fresh, overwrite=False) as tmp:
            tmp.write_text("theirs")
            fresh.write_text("appeared meanwhile")
    assert out.read_text() == "mine" and fresh.read_text() == "appeared meanwhile"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt", "b.pt"]


def test_temporary_names_are_recognisable() -> None:
    assert is_temporary(partial_path("run.h5")) and partial_path("run.h5").name == "run.h5.partial"
    assert is_temporary(".report.partial-123") and not is_temporary("report.json")
