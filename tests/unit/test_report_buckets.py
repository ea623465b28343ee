"""The reports' histogram rule (chat/reports.py, docs/reports.md): which
bucket a time falls in, the percentile as its bucket's upper bound, the
register's day of a UTC time, and the time-zone setting."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from jutella.chat.reports import bucket, cell_of, percentile
from jutella.settings import SettingsError, load_settings


def test_bounds_are_inclusive_upper_limits():
    assert [bucket(s) for s in (0, 15, 15.5, 30, 60, 61, 120, 300, 600, 1200, 3600, 3601)] == \
        [0, 0, 1, 1, 2, 3, 3, 4, 5, 6, 7, 8]


def test_percentiles_are_the_nearest_rank_values_bucket():
    counts = [1, 0, 1, 1, 0, 0, 0, 0, 0]  # 10 s, 45 s, 100 s
    assert percentile(counts, 0.5) == {"le": 60} and percentile(counts, 0.9) == {"le": 120}
    assert percentile([0] * 8 + [3], 0.5) == {"gt": 3600}
    assert percentile([0] * 9, 0.5) is None
    assert percentile([5, 0, 0, 0, 0, 0, 0, 0, 5], 0.5) == {"le": 15}  # the 5th of 10
    assert percentile([9, 0, 0, 0, 0, 0, 0, 0, 1], 0.9) == {"le": 15}  # the 9th of 10
    assert percentile([8, 0, 0, 0, 0, 0, 0, 0, 2], 0.9) == {"gt": 3600}


def test_the_day_and_hour_are_the_registers():
    assert cell_of(datetime(2026, 1, 14, 23, 30, tzinfo=UTC), "Europe/Helsinki") == (
        datetime(2026, 1, 15).date(), 1)
    assert cell_of(datetime(2026, 7, 14, 20, 59, tzinfo=UTC), "Europe/Helsinki")[1] == 23  # summer: UTC+3


def test_an_unknown_time_zone_stops_start_up_with_one_line():
    assert load_settings(time_zone="Europe/Stockholm").time_zone == "Europe/Stockholm"
    with pytest.raises(SettingsError, match="JUTELLA_TIME_ZONE.*not a time zone"):
        load_settings(time_zone="Mars/Olympus_Mons")
