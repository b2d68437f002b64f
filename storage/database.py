"""Opening and closing the database, and the checks the server runs at start."""

import asyncio
from pathlib import Path
from typing import Any

from tortoise import Tortoise, connections
from tortoise.backends.base.config_generator import expand_db_url

from storage.errors import DatabaseUnavailable
from storage.instants import write_times_in_utc

APP = "models"
CONNECTION = "default"
# WAL lets the API read while a reply is being written; foreign keys make deletes cascade;
# the busy timeout makes a second process (`wxgpt settings`, a backup) wait, not fail.
SQLITE_PRAGMAS: dict[str, Any] = {"journal_mode": "WAL", "foreign_keys": "ON", "busy_timeout": 5000}
PING_TIMEOUT_S = 5.0


def tortoise_config(db_url: str) -> dict[str, Any]:
    """Tortoise's config for wxgpt's models (and aerich's version table) on `db_url`."""
    return {
        "connections": {CONNECTION: _connection_config(db_url)},
        "apps": {
            APP: {"models": ["storage.models", "aerich.models"], "default_connection": CONNECTION}
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def _connection_config(db_url: str) -> str | dict[str, Any]:
    if not _is_sqlite(db_url):
        return db_url
    write_times_in_utc()
    # Tortoise runs every SQLite credential as a PRAGMA on the connection it opens.
    config: dict[str, Any] = expand_db_url(db_url)
    config["credentials"].update(SQLITE_PRAGMAS)
    return config


def _is_sqlite(db_url: str) -> bool:
    return db_url.startswith("sqlite://")


def ensure_sqlite_folder(db_url: str) -> None:
    """Create the folder of a SQLite file, which SQLite will not do itself."""
    if _is_sqlite(db_url):
        path = str(expand_db_url(db_url)["credentials"]["file_path"])
        if path != ":memory:":
            Path(path).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)


async def connect(db_url: str) -> None:
    """Open the database for every task of the process; raises DatabaseUnavailable.

    Tables come from migrations (`storage.migrate`), never from here.
    """
    ensure_sqlite_folder(db_url)
    # The global fallback makes the connection visible to every task, not only to the
    # one that opened it: uvicorn runs the lifespan and each request in different tasks.
    await Tortoise.init(config=tortoise_config(db_url), _enable_global_fallback=True)
    try:
        # Tortoise connects lazily; a first query makes a bad URL fail here, at start.
        await ping()
    except DatabaseUnavailable:
        await disconnect()
        raise


async def disconnect() -> None:
    """Close every connection."""
    await Tortoise.close_connections()


async def ping() -> None:
    """Run a trivial query; raises DatabaseUnavailable unless it succeeds within 5 seconds."""
    try:
        # An unreachable host would otherwise hold /readyz for asyncpg's 60 s connect timeout.
        async with asyncio.timeout(PING_TIMEOUT_S):
            await connections.get(CONNECTION).execute_query("SELECT 1")
    except Exception as exc:  # whatever stops SELECT 1 makes the database unusable
        reason = str(exc) or type(exc).__name__
        raise DatabaseUnavailable(f"the database did not answer: {reason}") from exc
