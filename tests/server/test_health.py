"""/healthz and /readyz when the database goes away under a running server."""

from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from tests.live_server import error_of
from tests.pg import PG_URL, new_pg_database
from tests.server.conftest import ServerFactory


@pytest.mark.postgres
async def test_readyz_says_the_database_is_unreachable(start_server: ServerFactory) -> None:
    async with new_pg_database() as url:
        server = start_server(db_url=url)
        try:
            assert httpx.get(server.url + "/readyz").status_code == 200
            name = urlsplit(url).path.lstrip("/")
            admin = await asyncpg.connect(PG_URL)
            try:
                await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            finally:
                await admin.close()
            status, code, message = error_of(httpx.get(server.url + "/readyz", timeout=30))
            assert (status, code) == (503, "unavailable")
            assert message.startswith("database unreachable:")
            assert name in message, "the reason names the missing database"
            assert httpx.get(server.url + "/healthz").status_code == 200
        finally:
            server.stop()
