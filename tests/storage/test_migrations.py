import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest
from tortoise import connections

from storage.database import connect, disconnect, ping
from storage.errors import DatabaseUnavailable
from storage.migrate import MIGRATIONS, apply_migrations, pending_migrations


async def count_users() -> int:
    _, rows = await connections.get("default").execute_query("SELECT count(*) AS n FROM users")
    return int(rows[0]["n"])


async def test_a_fresh_database_migrates_once(db_url: str) -> None:
    pending = await pending_migrations(db_url)
    assert pending, "a fresh database lacks the initial migration"
    assert await apply_migrations(db_url) == pending
    assert await apply_migrations(db_url) == []
    assert await pending_migrations(db_url) == []
    await connect(db_url)
    try:
        assert await count_users() == 0
    finally:
        await disconnect()


async def test_migration_calls_leave_an_open_connection_alone(db: str) -> None:
    assert await apply_migrations(db) == []
    assert await pending_migrations(db) == []
    assert await count_users() == 0
    await ping()


async def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'not' / 'yet' / 'there.sqlite3'}"
    await apply_migrations(url)
    await connect(url)
    try:
        connection = connections.get("default")
        pragmas = {}
        for pragma in ("journal_mode", "foreign_keys", "busy_timeout"):
            _, rows = await connection.execute_query(f"PRAGMA {pragma}")
            pragmas[pragma] = rows[0][0]
        assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 5000}
    finally:
        await disconnect()


async def test_an_unknown_dialect_is_refused() -> None:
    (path,) = (MIGRATIONS / "models").glob("0_*_init.py")
    spec = importlib.util.spec_from_file_location("initial_migration", path)
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    mysql = SimpleNamespace(capabilities=SimpleNamespace(dialect="mysql"))
    with pytest.raises(NotImplementedError, match="SQLite and PostgreSQL, not 'mysql'"):
        await migration.upgrade(mysql)


async def test_an_unreachable_database_fails_at_connect() -> None:
    with pytest.raises(DatabaseUnavailable, match="did not answer"):
        await connect("postgres://postgres@127.0.0.1:9/nowhere")
    with pytest.raises(DatabaseUnavailable):
        await ping()
