"""Daily free replies over the socket and /api/me, with the server's clock moved by the test."""

from datetime import UTC, datetime

from tests.live_server import chat_frame, open_chat, recv_until
from tests.server.conftest import ServerFactory

# 15:59:30 UTC is 23:59:30 in Shanghai; half a minute later a new day begins there, not in UTC.
BEFORE_MIDNIGHT = datetime(2026, 12, 7, 15, 59, 30, tzinfo=UTC)
AFTER_MIDNIGHT = datetime(2026, 12, 7, 16, 0, 30, tzinfo=UTC)


async def test_free_replies_are_spent_first_and_reset_at_midnight_in_the_zone(
    start_server: ServerFactory,
) -> None:
    server = start_server({"daily_free": 2}, default_quota=3)
    server.app.state.clock = lambda: BEFORE_MIDNIGHT
    token = server.login("night-owl")
    me = server.get("/api/me", token).json()
    assert (me["quota"], me["free"]) == (3, 2)
    ws, ready = await open_chat(server, token)
    assert (ready["quota"], ready["free"]) == (3, 2)
    left = []
    for n in range(3):
        await ws.send(chat_frame(f"question {n}"))
        done = (await recv_until(ws, "done"))[-1]
        left.append((done["quota"], done["free"]))
    assert left == [(3, 1), (3, 0), (2, 0)]
    server.app.state.clock = lambda: AFTER_MIDNIGHT
    me = server.get("/api/me", token).json()
    assert (me["quota"], me["free"]) == (2, 2)
    await ws.send(chat_frame("a new day"))
    done = (await recv_until(ws, "done"))[-1]
    assert (done["quota"], done["free"]) == (2, 1)
    await ws.close()


async def test_without_daily_free_only_the_bought_quota_counts(
    start_server: ServerFactory,
) -> None:
    server = start_server(default_quota=2)
    ws, ready = await open_chat(server, server.login())
    assert (ready["quota"], ready["free"]) == (2, 0)
    await ws.send(chat_frame("hello"))
    done = (await recv_until(ws, "done"))[-1]
    assert (done["quota"], done["free"]) == (1, 0)
    await ws.close()
