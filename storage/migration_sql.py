"""Picks a migration's SQL for the connected database: wxgpt's migrations carry aerich's SQL
for SQLite and for PostgreSQL, since aerich writes it for one dialect only."""

from tortoise import BaseDBAsyncClient


def sql_for(db: BaseDBAsyncClient, by_dialect: dict[str, str]) -> str:
    """The SQL for `db`'s dialect; raises NotImplementedError for any other database."""
    dialect = db.capabilities.dialect
    if dialect not in by_dialect:
        raise NotImplementedError(
            f"wxgpt's migrations support SQLite and PostgreSQL, not {dialect!r}"
        )
    return by_dialect[dialect]
