"""The US equity session, in US/Eastern (America/New_York, daylight saving included).

Regular trading is 09:30-16:00 Eastern, Monday to Friday. Exchange holidays are not
modelled: on a holiday Finnhub's `t` stays frozen like on a weekend, which the
frozen-quote rule (`normalize_finnhub.is_new_quote`) already treats as no new quote.
"""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from shared.wire import require_utc

EASTERN = ZoneInfo("America/New_York")
SESSION_OPEN = time(9, 30)
SESSION_CLOSE = time(16, 0)


def eastern(moment: datetime) -> datetime:
    """`moment` (aware) on the US/Eastern wall clock."""
    return require_utc(moment).astimezone(EASTERN)


def trading_day(moment: datetime) -> date:
    """The US/Eastern calendar day of `moment`: the day its daily candle belongs to."""
    return eastern(moment).date()


def in_regular_session(moment: datetime) -> bool:
    """Whether `moment` lies in a regular session (Mon-Fri, 09:30 <= time < 16:00 Eastern)."""
    local = eastern(moment)
    return local.weekday() < 5 and SESSION_OPEN <= local.time() < SESSION_CLOSE
