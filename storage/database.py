"""Opening and closing the database, and the checks the server runs at start."""

from pathlib import Path
from typing import Any

from tortoise import Tortoise, connections

from storage.models import Message, MessageStatus

MODELS = ["storage.models", "aerich.models"]


def tortoise_config(db_url: str) -> dict[str, Any]:
    """Tortoise's config for wxgpt's models (and aerich's version table) on `db_url`."""
    return {
        "connections": {"default": db_url},
        "apps": {"models": {"models": MODELS, "default_connection": "default"}},
        "use_tz": True,
        "timezone": "UTC",
    }


def ensure_sqlite_folder(db_url: str) -> None:
    """Create the folder of a SQLite file, which SQLite will not do itself."""
    if db_url.startswith("sqlite://") and ":memory:" not in db_url:
        path = db_url.removeprefix("sqlite://").split("?", 1)[0]
        Path(path).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)


async def connect(db_url: str) -> None:
    """Open the connections (tables come from migrations, never from here)."""
    ensure_sqlite_folder(db_url)
    # The global fallback makes the connection visible to every task, not only to the
    # one that opened it: uvicorn runs the lifespan and each request in different tasks.
    await Tortoise.init(config=tortoise_config(db_url), _enable_global_fallback=True)
    connection = connections.get("default")
    if connection.capabilities.dialect == "sqlite":
        # Tortoise already turns on WAL and foreign keys; a busy timeout lets a second
        # process (wxgpt settings, a backup) write without failing at once.
        await connection.execute_script("PRAGMA busy_timeout=5000;")


async def disconnect() -> None:
    """Close every connection."""
    await Tortoise.close_connections()


async def ping() -> None:
    """A trivial query; raises when the database cannot be reached."""
    await connections.get("default").execute_query("SELECT 1")


async def recover_interrupted_replies() -> int:
    """Mark replies left `generating` by a crash as `interrupted`; returns how many."""
    return await Message.filter(status=MessageStatus.GENERATING).update(
        status=MessageStatus.INTERRUPTED, finish_reason="cancelled"
    )
