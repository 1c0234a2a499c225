"""Shared option validators: every option is checked while the command line is parsed, by its flag.

Each factory returns a typer ``callback`` (``typer.Option(..., callback=positive())``). A bad value
stops the command before any work with a usage error (exit status 2) that names the flag, the
value and what was expected, e.g. ``Invalid value for '--time' / '-t': 0.0; expected a finite
number > 0``. ``None`` (an option left out) always passes; list options are checked item by item.

:func:`refuse_inapplicable` is the other half: options that the chosen mode would ignore are
refused, naming the flags and the mode (a silently ignored option is a wrong result the user
does not see).
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable, Iterable, Mapping, Optional

import typer

from kolmo.errors import ConfigurationError

__all__ = ["number", "positive", "non_negative", "finite", "at_least", "even_grid", "fraction", "device", "choice",
           "int_list", "number_list", "refuse_inapplicable", "DEVICE_PATTERN"]

Callback = Callable[[Any, Any, Any], Any]

DEVICE_PATTERN = re.compile(r"^(cpu|cuda(:\d+)?)$")
"""Device names the solver-side tools accept (availability is checked where the device is used)."""


def _each(value: Any) -> Iterable[Any]:
    return value if isinstance(value, (list, tuple)) else [value]


def number(*, gt: Optional[float] = None, ge: Optional[float] = None, lt: Optional[float] = None,
           le: Optional[float] = None, allow_nonfinite: bool = False, kind: str = "number") -> Callback:
    """A callback that accepts a finite number within the given bounds (``gt`` < x, ``ge`` <= x,
    x < ``lt``, x <= ``le``); NaN and ±inf are refused unless ``allow_nonfinite``."""
    bounds = [f"> {gt:g}" if gt is not None else "", f">= {ge:g}" if ge is not None else "",
              f"< {lt:g}" if lt is not None else "", f"<= {le:g}" if le is not None else ""]
    expected = " and ".join(b for b in bounds if b)
    noun = "an integer" if kind == "integer" else ("a finite number" if not allow_nonfinite else "a number")
    expected = f"{noun} {expected}".strip()

    def ok(x: float) -> bool:
        if not allow_nonfinite and not math.isfinite(x):
            return False
        return not ((gt is not None and not x > gt) or (ge is not None and not x >= ge)
                    or (lt is not None and not x < lt) or (le is not None and not x <= le))

    def callback(ctx: Any, param: Any, value: Any) -> Any:
        if value is None or getattr(ctx, "resilient_parsing", False):
            return value
        for x in _each(value):
            if not ok(float(x)):
                raise typer.BadParameter(f"{x!r}; expected {expected}")
        return value

    return callback


def positive() -> Callback:
    """A finite number > 0 (times, steps, rates, viscosities that must act)."""
    return number(gt=0)


def non_negative() -> Callback:
    """A finite number >= 0 (jitter, drag, viscosity)."""
    return number(ge=0)


def finite() -> Callback:
    """Any finite number."""
    return number()


def at_least(minimum: int) -> Callback:
    """An integer >= ``minimum`` (counts, epochs, batches, members, steps, threads)."""
    return number(ge=minimum, kind="integer")


def even_grid() -> Callback:
    """A grid size: an even integer >= 4 (the pseudo-spectral grids)."""

    def callback(ctx: Any, param: Any, value: Any) -> Any:
        if value is None or getattr(ctx, "resilient_parsing", False):
            return value
        for x in _each(value):
            if int(x) < 4 or int(x) % 2:
                raise typer.BadParameter(f"{x!r}; expected an even integer >= 4")
        return value

    return callback


def fraction(*, open_low: bool = True, open_high: bool = True) -> Callback:
    """A number in (0, 1) (or with closed ends)."""
    return number(**({"gt": 0} if open_low else {"ge": 0}), **({"lt": 1} if open_high else {"le": 1}))


def device() -> Callback:
    """``cpu``, ``cuda`` or ``cuda:K`` (checked even where no artifact will use it)."""

    def callback(ctx: Any, param: Any, value: Any) -> Any:
        if value is None or getattr(ctx, "resilient_parsing", False):
            return value
        if not DEVICE_PATTERN.match(str(value).strip()):
            raise typer.BadParameter(f"{value!r}; expected cpu, cuda or cuda:K (K a GPU index)")
        return value

    return callback


def choice(*valid: str) -> Callback:
    """One of ``valid`` (case-sensitive), listing them when it is not."""

    def callback(ctx: Any, param: Any, value: Any) -> Any:
        if value is None or getattr(ctx, "resilient_parsing", False):
            return value
        for x in _each(value):
            if x not in valid:
                raise typer.BadParameter(f"{x!r}; expected one of {', '.join(valid)}")
        return value

    return callback


def _list(kind: type, check: Callback, example: str) -> Callback:
    noun = "integers" if kind is int else "numbers"

    def callback(ctx: Any, param: Any, value: Any) -> Any:
        if value is None or getattr(ctx, "resilient_parsing", False):
            return value
        items = [x.strip() for x in str(value).split(",")]
        if not items or any(not x for x in items):
            raise typer.BadParameter(f"{value!r}; expected comma-separated {noun} like {example}")
        try:
            numbers = [kind(x) for x in items]
        except ValueError:
            raise typer.BadParameter(f"{value!r}; expected comma-separated {noun} like {example}") from None
        check(ctx, param, numbers)
        return value

    return callback


def int_list(minimum: int = 1) -> Callback:
    """A comma-separated list of integers >= ``minimum`` (the option keeps its text)."""
    return _list(int, at_least(minimum), "64,128")


def number_list(**bounds: float) -> Callback:
    """A comma-separated list of finite numbers within ``bounds`` (see :func:`number`)."""
    return _list(float, number(**bounds), "5,10,15,20")


def refuse_inapplicable(mode: str, given: Mapping[str, bool]) -> None:
    """Refuse options that ``mode`` ignores.

    Parameters
    ----------
    mode
        What was chosen, in words (``"without an artifact closure"``).
    given
        ``{flag: whether the user set it}`` for the options the mode ignores.

    Raises
    ------
    ConfigurationError
        Naming every such flag that was set, and the mode.
    """
    flags = [flag for flag, used in given.items() if used]
    if flags:
        word = "does" if len(flags) == 1 else "do"
        raise ConfigurationError(f"{', '.join(flags)} {word} not apply {mode}; drop {'it' if len(flags) == 1 else 'them'}")
