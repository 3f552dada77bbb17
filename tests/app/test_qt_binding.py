"""The check, before the window starts, that the Qt binding keeps None's reference count."""

from __future__ import annotations

import ctypes
import sys

import pytest

from app.qt_binding import PROBE_CALLS, binding_problem, stolen_none_references

only_where_none_is_mortal = pytest.mark.skipif(
    sys.version_info >= (3, 12), reason="None is immortal from Python 3.12: no binding can take its references"
)


def test_the_installed_qt_binding_takes_no_reference_to_none():
    assert abs(stolen_none_references()) < PROBE_CALLS // 10
    assert binding_problem() is None


@only_where_none_is_mortal
def test_a_binding_that_takes_a_reference_to_none_per_call_is_named_with_what_to_do():
    py_decref = ctypes.pythonapi.Py_DecRef
    py_decref.argtypes = [ctypes.py_object]
    taken = 0

    def void_call_of_a_defective_binding() -> None:
        nonlocal taken
        py_decref(None)
        taken += 1

    try:
        problem = binding_problem(void_call_of_a_defective_binding)
    finally:
        for _ in range(taken):  # give None back what the simulated defect took
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(None))
    assert problem is not None
    assert f"{PROBE_CALLS} in {PROBE_CALLS} calls" in problem
    assert "PySide6-Essentials<6.12" in problem and "Python 3.12" in problem
