"""Run-time settings as JSON values under string keys."""

from typing import Any

from tortoise.transactions import in_transaction

from storage.models import Setting


async def get_settings(keys_prefix: str = "") -> dict[str, Any]:
    """Every stored setting whose key starts with `keys_prefix`."""
    rows = await Setting.filter(key__startswith=keys_prefix)
    return {row.key: row.value for row in rows}


async def set_settings(values: dict[str, Any]) -> None:
    """Store (insert or replace) the values, all or none."""
    async with in_transaction():
        for key, value in values.items():
            await Setting.update_or_create(defaults={"value": value}, key=key)
