"""/healthz and /readyz: while the model loads, when it failed, when the database goes away."""

import asyncio
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from server.config import Settings
from tests.live_server import LiveServer, chat_frame, error_of, open_chat, recv_until
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


def test_health_and_readiness(server: LiveServer) -> None:
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(server.url + "/readyz")
    assert ready.status_code == 200
    assert ready.json()["model"] == server.settings.model.rsplit("/", 1)[-1]


async def test_a_model_that_fails_to_load_is_reported(tmp_path: Path) -> None:
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "gpt2"}')
    settings = Settings(
        _env_file=None,
        db_url=f"sqlite://{tmp_path / 'db.sqlite3'}",
        model=str(broken),
        dev_login=True,
    )
    server = LiveServer(settings).start(wait_for_model=False)
    try:
        for _ in range(200):
            ready = httpx.get(server.url + "/readyz")
            if "failed" in ready.text:
                break
            await asyncio.sleep(0.05)
        status, code, message = error_of(ready)
        assert (status, code) == (503, "unavailable")
        assert message.startswith("model failed to load")
        assert httpx.get(server.url + "/healthz").status_code == 200
        ws, _ = await open_chat(server, server.login())
        await ws.send(chat_frame("anyone there?"))
        error = (await recv_until(ws, "error"))[-1]
        assert error["code"] == "internal"
        assert "failed to load" in error["message"]
        await ws.close()
    finally:
        server.stop()
