"""The figures' optional matplotlib: its absence is a typed error that names the extra to install."""

import sys

import pytest

from kolmo.errors import KolmoError, OptionalDependencyError
from kolmo.evaluation.figures import figure_class


def test_figures_without_matplotlib_raise_a_typed_error_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # makes the import fail
    with pytest.raises(OptionalDependencyError, match=r"pip install kolmo\[plots\]") as info:
        figure_class()
    assert isinstance(info.value, KolmoError) and isinstance(info.value, ImportError)


def test_the_evaluation_package_imports_neither_torch_nor_matplotlib():
    import subprocess

    code = ("import sys, kolmo.evaluation, kolmo.evaluation.figures; "
            "print('torch' in sys.modules, 'matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
