"""Schema migrations with aerich: apply them, or list the ones a database still lacks."""

import importlib.resources
from pathlib import Path

from aerich import Command
from aerich.models import Aerich
from tortoise.exceptions import OperationalError

from storage.database import ensure_sqlite_folder, tortoise_config

APP = "models"


def migrations_location() -> Path:
    """The folder of checked-in migrations (storage/migrations)."""
    return Path(str(importlib.resources.files("storage") / "migrations"))


def _all_versions() -> list[str]:
    folder = migrations_location() / APP
    return sorted((p.name for p in folder.glob("*.py")), key=lambda name: int(name.split("_", 1)[0]))


async def apply_migrations(db_url: str) -> list[str]:
    """Apply pending migrations (aerich upgrade); returns the versions applied.

    Opens and closes its own connection, so call it before `connect`, not after.
    """
    ensure_sqlite_folder(db_url)
    command = Command(tortoise_config=tortoise_config(db_url), app=APP, location=str(migrations_location()))
    async with command:
        await command.init()
        applied: list[str] = await command.upgrade(run_in_transaction=True)
    return applied


async def pending_migrations(db_url: str) -> list[str]:
    """Versions in storage/migrations not yet applied to the database."""
    ensure_sqlite_folder(db_url)
    command = Command(tortoise_config=tortoise_config(db_url), app=APP, location=str(migrations_location()))
    async with command:
        try:
            versions = await Aerich.filter(app=APP).values_list("version", flat=True)
            done = {str(version) for version in versions}
        except OperationalError:
            done = set[str]()
    return [version for version in _all_versions() if version not in done]
