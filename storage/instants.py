"""Instants as the database compares them."""

from datetime import UTC, datetime


def in_utc(moment: datetime) -> datetime:
    """`moment` (timezone-aware) in UTC, the zone every stored time is written in: SQLite
    compares times as text, so a bound written in another zone (the operator's midnight in
    Asia/Shanghai) would compare by its digits, not by when it is."""
    return moment.astimezone(UTC)
