"""Texts written for people: durations and times as people read them."""

from __future__ import annotations

import time

import pytest

from codexdash.format import duration, local_time
from codexdash.identity import _other_start


@pytest.mark.parametrize("seconds,shown", [
    (None, "-"), (0, "0s"), (59, "59s"), (60, "1m 00s"), (100, "1m 40s"), (119, "1m 59s"),
    (599, "9m 59s"), (600, "10m"), (3599, "59m"), (3600, "1h00m"), (200_000, "2d07h"),
])
def test_durations_for_people(seconds, shown):
    assert duration(seconds) == shown


def test_start_times_are_local_date_times():
    ts = time.mktime((2026, 11, 28, 15, 4, 5, 0, 0, -1)) + 0.78
    assert local_time(ts) == "2026-11-28 15:04:05"
    assert _other_start(ts, ts - 3600).startswith("started at 2026-11-28 15:04:05, not at 2026-11-28 14:04:05")
    # Within one second (a reused PID starts within milliseconds of the recorded start): milliseconds.
    assert "15:04:05.780, not at 2026-11-28 15:04:05.790" in _other_start(ts, ts + 0.01)
