import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from tortoise.backends.base.executor import EXECUTOR_CACHE

from storage.database import connect, disconnect
from storage.migrate import apply_migrations

PG_URL = os.environ.get("WXGPT_TEST_PG_URL", "postgres://postgres@127.0.0.1:5432/test")
# Several pooled connections, so that concurrent calls really run side by side.
PG_POOL = "maxsize=10"

_pg_down: list[str] = []


@pytest.fixture(autouse=True)
def _forget_compiled_sql() -> Iterator[None]:
    """Tortoise caches INSERT/DELETE SQL per connection name, not per dialect, for the whole
    process; these tests switch "default" between SQLite and PostgreSQL, so start clean."""
    EXECUTOR_CACHE.clear()
    yield
    EXECUTOR_CACHE.clear()


async def _admin() -> asyncpg.Connection:
    """A connection to PG_URL's database, or a skip naming the URL when none answers."""
    if _pg_down:
        pytest.skip(_pg_down[0])
    try:
        connection: asyncpg.Connection = await asyncpg.connect(PG_URL, timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        _pg_down.append(f"no PostgreSQL answers at {PG_URL} ({exc}); set WXGPT_TEST_PG_URL")
        pytest.skip(_pg_down[0])
    return connection


@asynccontextmanager
async def _new_pg_database() -> AsyncIterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped (connections and all) on exit."""
    admin = await _admin()
    name = f"wxgpt_test_{uuid.uuid4().hex[:12]}"
    parts = urlsplit(PG_URL)
    query = "&".join(q for q in (parts.query, PG_POOL) if q)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield urlunsplit(parts._replace(path=f"/{name}", query=query))
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database: a SQLite file in tmp_path, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'storage.sqlite3'}"
        return
    async with _new_pg_database() as url:
        yield url


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[str]:
    """`db_url`, migrated through aerich (as the server does) and connected."""
    await apply_migrations(db_url)
    await connect(db_url)
    yield db_url
    await disconnect()
