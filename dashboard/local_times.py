"""Local wall-clock times in an IANA zone, without silent guesses at daylight-saving changes.

A time in a spring-forward gap does not exist (02:30 in Paris on the last Sunday of March) and a
time in an autumn overlap happens twice (02:30 on the last Sunday of October). Python quietly
picks one reading for both; a post then goes out an hour off. `resolve` refuses a gap, naming
the nearest valid times, and an overlap unless the caller says which reading it means.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo

# The span of times the dashboard takes in (cursors, filters, schedules, weeks): wide enough
# for any real post, narrow enough that a day or a week either side, or any offset, stays
# inside what Python and the databases can hold (year 1 and year 9999 overflow).
EARLIEST_DAY, LATEST_DAY = date(1900, 1, 1), date(9998, 12, 31)
OUT_OF_RANGE = f"must be between {EARLIEST_DAY} and {LATEST_DAY}"


def day_in_range(day: date) -> bool:
    """Whether a calendar day is within the span the dashboard takes in."""
    return EARLIEST_DAY <= day <= LATEST_DAY


def time_in_range(moment: datetime) -> bool:
    """Whether a time (with or without an offset) is within the span, its UTC day included."""
    return day_in_range(moment.date()) and (
        moment.tzinfo is None or day_in_range(moment.astimezone(UTC).date()))


class LocalTimeError(ValueError):
    """A local time that does not exist, or is ambiguous, in its zone; the message says which."""


def _offset(moment: datetime) -> str:
    return moment.strftime("%z")[:3] + ":" + moment.strftime("%z")[3:]


def _exists(naive: datetime, zone: tzinfo) -> bool:
    aware = naive.replace(tzinfo=zone)
    return aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == naive


def resolve(naive: datetime, zone: tzinfo, fold: int | None = None,
            how_to_choose: str = " with fold 0 or 1, or give the time with its offset") -> datetime:
    """`naive` read in `zone`, timezone-aware.

    Raises LocalTimeError for a time in a gap (with the last valid minute before it and the
    first after) and for a time in an overlap when `fold` is None (0: the first of the two
    moments, 1: the second); `how_to_choose` ends that message for the caller's means.
    """
    name = getattr(zone, "key", str(zone))
    shown = naive.strftime("%Y-%m-%d %H:%M")
    if not _exists(naive, zone):
        minute = naive.replace(second=0, microsecond=0)
        before = minute - timedelta(minutes=1)
        while not _exists(before, zone):
            before -= timedelta(minutes=1)
        after = minute + timedelta(minutes=1)
        while not _exists(after, zone):
            after += timedelta(minutes=1)
        raise LocalTimeError(
            f"{shown} does not exist in {name}: the clocks skip it for daylight saving time; the "
            f"nearest valid times are {before:%H:%M} and {after:%H:%M}")
    first, second = naive.replace(tzinfo=zone, fold=0), naive.replace(tzinfo=zone, fold=1)
    if first.utcoffset() != second.utcoffset():
        if fold is None:
            raise LocalTimeError(
                f"{shown} happens twice in {name} (the clocks go back): first at "
                f"{_offset(first)}, then at {_offset(second)}; say which{how_to_choose}")
        return second if fold else first
    return first


def check_offset(aware: datetime, zone: tzinfo) -> None:
    """Refuse a time given with an offset that `zone` does not have at that moment."""
    expected = aware.astimezone(zone)
    if expected.utcoffset() != aware.utcoffset():
        name = getattr(zone, "key", str(zone))
        raise LocalTimeError(
            f"the offset {_offset(aware)} is not {name}'s at that time ({_offset(expected)}); "
            "give the local time without an offset, or drop timezone")


def validate_local_field(field, zone: tzinfo) -> None:
    """For a datetime-local form field read in `zone`: a WTForms ValidationError for a time in
    a gap or an overlap (a page has no way to say which of the two, so it picks another time)."""
    from wtforms.validators import ValidationError

    if field.data is None:
        return
    try:
        resolve(field.data.replace(tzinfo=None), zone,
                how_to_choose=": pick a time outside the hour that repeats")
    except LocalTimeError as exc:
        raise ValidationError(str(exc)) from None
