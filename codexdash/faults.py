"""Fault points: a codexdash killed at a chosen step, so the tests can prove that each step leaves
records the next look can settle."""

from __future__ import annotations

import os

_FAULT_ENV = "CODEXDASH_FAULT"


def fault_point(name: str) -> None:
    """Dies here, as SIGKILL would, when CODEXDASH_FAULT names this point.

    Lets the tests prove that a codexdash killed between two steps of a start leaves records
    the next run can settle; it does nothing otherwise.
    """
    if os.environ.get(_FAULT_ENV) == name:
        os._exit(137)
