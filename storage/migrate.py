"""Schema migrations with aerich: apply them, or list the ones a database still lacks.

Both functions open and close their own connection on a Tortoise context of their own, so
they can run standalone (`wxgpt migrate`) or while the process is connected (`connect`):
aerich would otherwise reuse, and then close, whatever Tortoise state is current.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aerich import Command
from tortoise.context import TortoiseContext
from tortoise.exceptions import OperationalError

from storage.database import APP, ensure_sqlite_folder, tortoise_config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


@asynccontextmanager
async def _aerich(db_url: str) -> AsyncIterator[Command]:
    ensure_sqlite_folder(db_url)
    async with TortoiseContext():
        command = Command(
            tortoise_config=tortoise_config(db_url), app=APP, location=str(MIGRATIONS)
        )
        # Initialises Tortoise on the fresh context (aerich only does so when none is current).
        await command.init()
        yield command


async def apply_migrations(db_url: str) -> list[str]:
    """Apply the pending migrations, each in a transaction; returns the versions applied."""
    async with _aerich(db_url) as command:
        applied: list[str] = await command.upgrade(run_in_transaction=True)
    return applied


async def pending_migrations(db_url: str) -> list[str]:
    """The versions in storage/migrations that the database has not applied yet."""
    async with _aerich(db_url) as command:
        try:
            pending: list[str] = await command.heads()
        except OperationalError:
            # No version table: a brand-new database lacks every migration.
            pending = await command.history()
    return pending
