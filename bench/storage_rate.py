"""Storage: chat messages stored per second on SQLite and on the local PostgreSQL."""

import asyncio
import tempfile
import time
import uuid

import pytest
from tortoise.backends.base.executor import EXECUTOR_CACHE

from storage.database import connect, disconnect
from storage.exchanges import begin_exchange, finish_reply
from storage.migrate import apply_migrations
from storage.models import MessageStatus
from storage.users import get_or_create_user
from tests.pg import PG_URL, new_pg_database

WRITERS = 8


async def _writer(exchanges: int) -> None:
    user, _ = await get_or_create_user(uuid.uuid4().hex, default_quota=exchanges)
    conversation_id = None
    for turn in range(exchanges):
        exchange = await begin_exchange(
            user.id, conversation_id, f"question {turn}", uuid.uuid4().hex
        )
        conversation_id = exchange.conversation_id
        await finish_reply(
            exchange.reply_id,
            content=f"answer {turn} " * 20,
            status=MessageStatus.COMPLETE,
            finish_reason="stop",
            prompt_tokens=30,
            completion_tokens=60,
            first_token_ms=300,
            duration_ms=4000,
        )


async def _rate(db_url: str, exchanges: int) -> float:
    # Tortoise caches compiled SQL per connection name, not per dialect, for the whole process;
    # this process switches "default" from SQLite to PostgreSQL.
    EXECUTOR_CACHE.clear()
    await apply_migrations(db_url)
    await connect(db_url)
    try:
        started = time.perf_counter()
        await asyncio.gather(*(_writer(exchanges // WRITERS) for _ in range(WRITERS)))
        elapsed = time.perf_counter() - started
    finally:
        await disconnect()
    # Each exchange stores two messages: the question and the finished reply.
    return 2 * (exchanges // WRITERS) * WRITERS / elapsed


async def _postgres_rate(exchanges: int) -> float:
    async with new_pg_database() as db_url:
        return await _rate(db_url, exchanges)


def run(quick: bool) -> list[dict[str, str]]:
    """Messages/s with 8 concurrent writers, each exchange charged, stored and finished."""
    exchanges = 200 if quick else 2000
    sqlite_url = f"sqlite://{tempfile.mkdtemp(prefix='wxgpt-bench-')}/bench.sqlite3"
    sqlite = f"{asyncio.run(_rate(sqlite_url, exchanges)):.0f}"
    rows = [{"database": "SQLite (WAL)", "exchanges": str(exchanges), "messages/s": sqlite}]
    try:
        pg = f"{asyncio.run(_postgres_rate(exchanges)):.0f}"
    except pytest.skip.Exception as exc:
        pg = f"skipped: {exc}"
    rows.append(
        {"database": f"PostgreSQL ({PG_URL})", "exchanges": str(exchanges), "messages/s": pg}
    )
    return rows
