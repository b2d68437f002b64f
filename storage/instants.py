"""Times as SQLite holds them: as text, which it compares by its digits, so every time is
written in UTC."""

import sqlite3
from datetime import UTC, datetime

# Tortoise's SQLite backend registers its own adapter on import, which writes a time in its
# own zone: imported first, so that the one below replaces it.
import tortoise.backends.sqlite.executor  # noqa: F401


def _utc_text(moment: datetime) -> str:
    """A time as SQLite stores and compares it. In its own zone, a bound such as the
    operator's midnight in Asia/Shanghai (`…+08:00`) would compare with the stored `…+00:00`
    times by its digits, not by when it is."""
    return (moment.astimezone(UTC) if moment.tzinfo else moment).isoformat(" ")


def write_times_in_utc() -> None:
    """Make every time SQLite is given, stored or compared, UTC text (for the process)."""
    sqlite3.register_adapter(datetime, _utc_text)
