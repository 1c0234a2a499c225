"""cli.errors / cli.options in process: OS errors typed by path, exit codes per error class, bugs keep
their traceback, validators name the flag and refuse NaN/inf."""

from __future__ import annotations

import errno
from pathlib import Path
from types import SimpleNamespace

import pytest
import typer

from cli import errors
from cli.errors import friendly_errors, guard, translate_os_error
from cli.options import at_least, device, int_list, number_list, positive, refuse_inapplicable
from closure.errors import CheckpointError, ExportCheckError
from coupling.errors import GridMismatchError, PresetMismatchError
from kolmo.errors import (BlowUpError, ConfigurationError, FileFormatError, OutputExistsError, PathError,
                          ResourceError)


@pytest.mark.parametrize("exc, kind", [
    (PermissionError(errno.EACCES, "Permission denied", "/x/out.h5"), PathError),
    (FileExistsError(errno.EEXIST, "File exists", "/x/out"), PathError),
    (IsADirectoryError(errno.EISDIR, "Is a directory", "/x/out.h5"), PathError),
    (NotADirectoryError(errno.ENOTDIR, "Not a directory", "/x/file/out.h5"), PathError),
    (OSError(errno.ENOSPC, "No space left on device", "/x/out.h5"), ResourceError),
    (OSError("Unable to synchronously create file (unable to open file: name = '/x/out.h5', errno = 13, "
             "error message = 'Permission denied')"), PathError),
])
def test_os_errors_on_paths_become_typed_errors_naming_the_path(exc: OSError, kind: type) -> None:
    typed = translate_os_error(exc)
    assert isinstance(typed, kind) and "/x/" in str(typed)


def test_an_os_error_without_a_path_is_not_translated() -> None:
    assert translate_os_error(OSError(errno.EIO, "I/O error")) is None


@pytest.mark.parametrize("exc, code", [
    (ConfigurationError("bad option"), 2), (OutputExistsError("exists"), 2),
    (FileFormatError("corrupt"), 3), (CheckpointError("corrupt"), 3), (GridMismatchError("grid"), 3),
    (PresetMismatchError("preset"), 3), (PathError("path"), 3),
    (BlowUpError(3, 0.1, 0, "cfl"), 4), (ExportCheckError("check"), 4), (ResourceError("memory"), 4),
    (MemoryError(), 4), (KeyboardInterrupt(), 130),
])
def test_every_error_class_exits_with_its_documented_code(exc: BaseException, code: int, capsys) -> None:
    with pytest.raises(typer.Exit) as info:
        with friendly_errors():
            raise exc
    assert info.value.exit_code == code
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1  # one line


def test_a_message_spanning_lines_or_holding_brackets_prints_as_one_line(capsys) -> None:
    with pytest.raises(typer.Exit):
        with friendly_errors():
            raise FileFormatError("shape [64, 64]\nexpected [32, 32]")
    err = capsys.readouterr().err
    assert err.strip() == "error: FileFormatError: shape [64, 64] expected [32, 32]"


@pytest.fixture
def sigint_received():
    """As after a SIGINT: the interrupt is remembered (cli.errors._on_sigint)."""
    errors._interrupted.set()
    yield
    errors._interrupted.clear()


def test_ctrl_c_that_a_library_reports_as_another_error_exits_as_an_interrupt(sigint_received, capsys) -> None:
    """numba's dispatcher turns a KeyboardInterrupt raised in its call into ``SystemError: ... returned a result
    with an exception set`` (seen as a flaky traceback, exit 1, of ``kolmo run`` under Ctrl-C)."""
    for exc in (SystemError("CPUDispatcher(f) returned a result with an exception set"), OSError("h5 write failed")):
        with pytest.raises(typer.Exit) as info:
            with friendly_errors():
                try:
                    raise KeyboardInterrupt
                except KeyboardInterrupt as cause:
                    raise exc from cause
        assert info.value.exit_code == 130
        assert capsys.readouterr().err.strip().startswith("interrupted: ")


def test_without_a_sigint_such_an_error_stays_a_bug_and_nested_boundaries_report_once(capsys) -> None:
    with pytest.raises(SystemError):
        with friendly_errors():
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt as cause:
                raise SystemError("returned a result with an exception set") from cause
    errors._interrupted.set()
    try:
        with pytest.raises(typer.Exit) as info:
            with friendly_errors():
                with friendly_errors():
                    raise ConfigurationError("bad option")
    finally:
        errors._interrupted.clear()
    assert info.value.exit_code == 2 and len(capsys.readouterr().err.strip().splitlines()) == 1


def test_an_interrupt_landing_in_a_finaliser_is_not_printed_but_remembered(sigint_received) -> None:
    seen: list[type] = []
    hook = errors._quiet_unraisable(lambda unraisable: seen.append(type(unraisable.exc_value)))
    for exc in (KeyboardInterrupt(), ValueError("a bug in a __del__")):
        hook(SimpleNamespace(exc_value=exc))
    assert seen == [ValueError]
    with pytest.raises(KeyboardInterrupt):
        errors.check_interrupt()


def test_a_bug_keeps_its_traceback() -> None:
    @guard
    def command() -> None:
        raise ZeroDivisionError("a bug")

    with pytest.raises(ZeroDivisionError):
        command()


class _Param:
    opts = ["--time"]


@pytest.mark.parametrize("callback, value, match", [
    (positive(), 0.0, "expected a finite number > 0"), (positive(), float("nan"), "nan"),
    (positive(), float("inf"), "inf"), (at_least(1), 0, "expected an integer >= 1"),
    (device(), "tpu9", "expected cpu, cuda or cuda:K"), (int_list(1), "64,a", "comma-separated integers"),
    (int_list(1), "64,,128", "comma-separated"), (number_list(gt=0), "5,nan", "nan"),
])
def test_validators_refuse_bad_values(callback, value, match: str) -> None:
    with pytest.raises(typer.BadParameter, match=match):
        callback(None, _Param(), value)


def test_validators_accept_good_values_and_absent_options() -> None:
    assert positive()(None, _Param(), 1e-3) == 1e-3 and positive()(None, _Param(), None) is None
    assert int_list(4)(None, _Param(), "64,128") == "64,128" and device()(None, _Param(), "cuda:1") == "cuda:1"


def test_inapplicable_options_are_refused_by_name() -> None:
    with pytest.raises(ConfigurationError, match="--closure-every, --device do not apply to X; drop them"):
        refuse_inapplicable("to X", {"--closure-every": True, "--device": True, "--closure-seed": False})
    refuse_inapplicable("to X", {"--closure-every": False})
