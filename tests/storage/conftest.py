from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.database import connect, disconnect
from storage.migrate import apply_migrations
from tests.pg import new_pg_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database: a SQLite file in tmp_path, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'storage.sqlite3'}"
        return
    async with new_pg_database() as url:
        yield url


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[str]:
    """`db_url`, migrated through aerich (as the server does) and connected."""
    await apply_migrations(db_url)
    await connect(db_url)
    yield db_url
    await disconnect()
