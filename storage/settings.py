"""Run-time settings as JSON values under string keys."""

from datetime import UTC, datetime
from typing import Any

from storage.models import Setting


async def get_settings(keys_prefix: str = "") -> dict[str, Any]:
    """Every stored setting whose key starts with `keys_prefix`."""
    rows = await Setting.filter(key__startswith=keys_prefix)
    return {row.key: row.value for row in rows}


async def set_settings(values: dict[str, Any]) -> None:
    """Store (insert or replace) the values, all or none."""
    if not values:
        return
    now = datetime.now(UTC)
    # One INSERT ... ON CONFLICT statement: atomic, and safe against a concurrent writer.
    await Setting.bulk_create(
        [Setting(key=key, value=value, updated_at=now) for key, value in values.items()],
        on_conflict=["key"],
        update_fields=["value", "updated_at"],
    )
