"""Fresh PostgreSQL databases for tests, or a skip that names the URL."""

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

PG_URL = os.environ.get("WXGPT_TEST_PG_URL", "postgres://postgres@127.0.0.1:5432/test")
# Several pooled connections, so that concurrent calls really run side by side.
PG_POOL = "maxsize=10"

_pg_down: list[str] = []


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
async def new_pg_database() -> AsyncIterator[str]:
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
