"""Opening hours, the pure part (chat/hours.py; docs/hours.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from jutella.chat import hours
from jutella.chat.errors import ChatError

HKI = ZoneInfo("Europe/Helsinki")
WEEKDAYS = {str(d): [["09:00", "16:00"]] for d in range(5)}


def sched(weekly=None, exceptions=()):
    w, e = hours.parse(WEEKDAYS if weekly is None else weekly, list(exceptions))
    return hours.load(HKI, w, e)


def utc(*a):
    return datetime(*a, tzinfo=UTC)


def test_no_schedule_is_always_open():
    assert hours.is_open(None, utc(2026, 12, 6, 3)) and hours.next_opening(None, utc(2026, 12, 6, 3)) is None


def test_open_in_local_time_and_next_opening_after_the_weekend():
    s = sched()
    # Friday 2026-12-04 15:59 Helsinki (UTC+2) = 13:59 UTC: open; 16:00: closed
    assert hours.is_open(s, utc(2026, 12, 4, 13, 59))
    assert not hours.is_open(s, utc(2026, 12, 4, 14, 0))
    nxt = hours.next_opening(s, utc(2026, 12, 5, 12))  # Saturday
    assert nxt.isoformat() == "2026-12-07T09:00:00+02:00"  # Monday 9:00


@pytest.mark.parametrize("before, after, offset", [
    # 2026-03-29: Helsinki goes from +02:00 to +03:00 at 03:00 local
    (utc(2026, 3, 28, 12), "2026-03-30T09:00:00+03:00", 3),
    # 2026-10-25: back from +03:00 to +02:00
    (utc(2026, 10, 24, 12), "2026-10-26T09:00:00+02:00", 2),
])
def test_daylight_saving_changes(before, after, offset):
    s = sched()
    nxt = hours.next_opening(s, before)
    assert nxt.isoformat() == after
    # the opening is 9:00 on the wall, so its UTC hour moves with the clocks
    assert nxt.astimezone(UTC).hour == 9 - offset
    assert hours.is_open(s, nxt) and not hours.is_open(s, nxt.replace(hour=8, minute=59))


def test_an_hour_that_does_not_exist_opens_when_the_clocks_have_jumped():
    s = sched({"6": [["03:30", "05:00"]]})  # Sunday 2026-03-29 03:30 does not exist in Helsinki
    assert hours.next_opening(s, utc(2026, 3, 28, 12)).isoformat() == "2026-03-29T04:30:00+03:00"


def test_exception_days():
    s = sched(exceptions=[{"date": "2026-12-24", "hours": [], "note": "Christmas Eve"},
                          {"date": "2026-12-26", "hours": [["10:00", "12:00"]]}])  # a Saturday opening
    assert not hours.is_open(s, utc(2026, 12, 24, 10))  # Thursday, closed all day
    assert hours.next_opening(s, utc(2026, 12, 24, 10)).isoformat() == "2026-12-25T09:00:00+02:00"
    assert hours.is_open(s, utc(2026, 12, 26, 8, 30))
    assert s.exceptions[datetime(2026, 12, 24).date()].note == "Christmas Eve"


def test_several_intervals_a_day_and_midnight_end():
    s = sched({"0": [["13:00", "24:00"], ["08:00", "11:00"]]})
    assert hours.is_open(s, utc(2026, 12, 7, 21, 59))  # 23:59 local
    assert not hours.is_open(s, utc(2026, 12, 7, 10))  # 12:00 local, the lunch gap
    assert hours.next_opening(s, utc(2026, 12, 7, 10)).isoformat() == "2026-12-07T13:00:00+02:00"


@pytest.mark.parametrize("weekly, says", [
    ({"0": [["9:00", "16:00"]]}, "is not a time"),
    ({"0": [["16:00", "09:00"]]}, "is not after"),  # overnight intervals are refused: write two
    ({"0": [["09:00", "12:00"], ["11:00", "14:00"]]}, "overlap"),
    ({"7": [["09:00", "12:00"]]}, "Unknown weekday"),
])
def test_refused_with_a_reason(weekly, says):
    with pytest.raises(ChatError) as err:
        hours.parse(weekly, [])
    assert err.value.code == "hours_invalid" and says in err.value.message


def test_may_start_is_the_one_rule():
    s = {None: sched()}
    closed, opened = utc(2026, 12, 5, 12), utc(2026, 12, 7, 8)
    assert hours.may_start(s, None, online=True, at=opened, strict=True)
    assert not hours.may_start(s, None, online=True, at=closed, strict=True)
    assert hours.may_start(s, None, online=True, at=closed, strict=False)  # online agents still get chats
    assert not hours.may_start(s, None, online=False, at=opened, strict=False)
    assert not hours.may_start(s, 3, online=True, at=closed, strict=True)  # a department follows the service
    assert hours.may_start({}, 3, online=True, at=closed, strict=True)  # no hours: always open
