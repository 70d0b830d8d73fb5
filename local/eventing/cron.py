"""PingSource schedules: robfig/cron with optional leading seconds, descriptors, time zones.

Knative parses `spec.schedule` with `SecondOptional | Minute | Hour | Dom | Month | Dow |
Descriptor` (knative-eventing.md e): 5 fields, or 6 with a leading seconds field; `@hourly`
and friends; `@every …` rejected; `spec.timezone` applied as `CRON_TZ=<tz>`. We validate that
grammar here (croniter alone would also accept `L`, `#`, `H`, years, …) and let croniter
compute the fire times.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

DEFAULT_SCHEDULE = "* * * * *"
_DESCRIPTORS = {
    "@yearly": "0 0 0 1 1 *",
    "@annually": "0 0 0 1 1 *",
    "@monthly": "0 0 0 1 * *",
    "@weekly": "0 0 0 * * 0",
    "@daily": "0 0 0 * * *",
    "@midnight": "0 0 0 * * *",
    "@hourly": "0 0 * * * *",
}
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# (name, low, high, names) for the six fields seconds … day of week, as robfig/cron bounds them.
_FIELDS = (
    ("second", 0, 59, ()),
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 6, _DAYS),
)
_RANGE = re.compile(r"^(?P<start>\*|\?|[0-9A-Za-z]+)(?:-(?P<end>[0-9A-Za-z]+))?(?:/(?P<step>\d+))?$")


class CronError(ValueError):
    """The schedule or time zone would be rejected by the PingSource webhook."""


@dataclass(frozen=True)
class CronSchedule:
    """A validated PingSource schedule: six-field expression plus the zone it runs in."""

    expression: str  # as written in the manifest
    six_fields: str  # seconds first, '?' replaced, descriptors expanded
    zone: tzinfo

    def next_after(self, moment: datetime) -> datetime:
        """The first fire time strictly after `moment` (aware datetime), in the schedule's zone."""
        start = moment.astimezone(self.zone)
        return croniter(self.six_fields, start, second_at_beginning=True).get_next(datetime)


def parse_schedule(schedule: str | None, timezone_name: str | None = None) -> CronSchedule:
    """Validate a PingSource `spec.schedule` (+ `spec.timezone`) the way the webhook does."""
    text = (schedule if schedule is not None else DEFAULT_SCHEDULE).strip()
    if not text:
        raise CronError("schedule is empty")
    zone_name = timezone_name or None
    for prefix in ("CRON_TZ=", "TZ="):
        if text.startswith(prefix):
            if zone_name is not None:
                raise CronError(f"schedule {schedule!r} has a {prefix} prefix and spec.timezone is also set")
            zone_name, _, text = text[len(prefix) :].partition(" ")
            text = text.strip()
    zone = load_zone(zone_name) if zone_name else local_zone()

    if text.startswith("@"):
        if text.startswith("@every"):
            raise CronError(f"schedule {schedule!r}: '@every' is not supported by PingSource")
        if text not in _DESCRIPTORS:
            raise CronError(f"schedule {schedule!r}: unknown descriptor (known: {', '.join(_DESCRIPTORS)})")
        return CronSchedule(expression=schedule or DEFAULT_SCHEDULE, six_fields=_DESCRIPTORS[text], zone=zone)

    fields = text.split()
    if len(fields) == 5:
        fields = ["0", *fields]
    elif len(fields) != 6:
        raise CronError(
            f"schedule {schedule!r} has {len(fields)} fields; expected 5 (minute hour day month weekday) "
            "or 6 with leading seconds (e.g. '*/5 * * * * *')"
        )
    normalised = [_validate_field(value, spec, schedule or text) for value, spec in zip(fields, _FIELDS)]
    six_fields = " ".join(normalised)
    if not croniter.is_valid(six_fields, second_at_beginning=True):
        raise CronError(f"schedule {schedule!r} is not a valid cron expression")
    return CronSchedule(expression=schedule or DEFAULT_SCHEDULE, six_fields=six_fields, zone=zone)


def _validate_field(value: str, spec: tuple[str, int, int, tuple[str, ...]], schedule: str) -> str:
    name, low, high, names = spec
    parts = []
    for part in value.split(","):
        match = _RANGE.match(part)
        if match is None:
            raise CronError(f"schedule {schedule!r}: {name} field {value!r} is not valid")
        start, end, step = match.group("start"), match.group("end"), match.group("step")
        if start in ("*", "?"):
            if end is not None:
                raise CronError(f"schedule {schedule!r}: {name} field {value!r} is not valid")
            start = "*"
        else:
            first = _value(start, name, low, high, names, schedule)
            if end is not None and _value(end, name, low, high, names, schedule) < first:
                raise CronError(f"schedule {schedule!r}: {name} range {part!r} is backwards")
        if step is not None and int(step) == 0:
            raise CronError(f"schedule {schedule!r}: {name} step must be positive")
        parts.append(start + (f"-{end}" if end else "") + (f"/{step}" if step else ""))
    return ",".join(parts)


def _value(token: str, name: str, low: int, high: int, names: tuple[str, ...], schedule: str) -> int:
    if token.isdigit():
        number = int(token)
    elif token.upper() in names:
        number = names.index(token.upper()) + low
    else:
        raise CronError(f"schedule {schedule!r}: {name} value {token!r} is not valid")
    if not low <= number <= high:
        raise CronError(f"schedule {schedule!r}: {name} value {number} is outside {low}-{high}")
    return number


def load_zone(name: str) -> tzinfo:
    """An IANA time zone; CronError if unknown (the webhook rejects unknown `spec.timezone`)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError(f"timezone {name!r} is not a known IANA time zone") from None


def local_zone() -> tzinfo:
    """The process's system zone (Knative's default when `spec.timezone` is unset)."""
    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    try:
        with open("/etc/localtime", "rb") as handle:
            return ZoneInfo.from_file(handle, key="localtime")
    except OSError:
        return UTC
