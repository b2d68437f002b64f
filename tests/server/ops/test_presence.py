"""The presence registry on a real server: what /api/ops/snapshot shows of each chat socket."""

from typing import Any

from tests.live_server import (
    chat_frame,
    open_chat,
    passes_for_deltas,
    recv,
    recv_until,
    socket_of,
    stop_reply,
)
from tests.pace import StepFile
from tests.server.conftest import ServerFactory


def state_of(snapshot: dict[str, Any], user_id: int) -> str | None:
    row = socket_of(snapshot, user_id)
    return None if row is None else str(row["state"])


async def test_presence_follows_connect_queue_generate_and_disconnect(
    start_server: ServerFactory, gate: StepFile
) -> None:
    server = start_server(max_concurrent_generations=1, chat={"max_new_tokens": 40})
    admin = server.admin_login()
    alice_token, alice = server.login_user("alice")
    bob_token, bob = server.login_user("bob")
    alice_ws, _ = await open_chat(server, alice_token)
    bob_ws, _ = await open_chat(server, bob_token)

    snapshot = await server.ops_snapshot_until(admin, lambda s: len(s["sockets"]) == 2)
    row = socket_of(snapshot, alice)
    assert row is not None
    assert row["user"] == {"id": alice, "openid": "dev:alice", "nickname": "alice"}
    assert row["remote"].startswith("127.0.0.1:")
    assert (row["state"], row["queue_position"], row["tokens"], row["tokens_per_s"]) == (
        "idle",
        None,
        0,
        None,
    )
    assert snapshot["engine"]["slots"] == 1

    gate.allow_more(passes_for_deltas(1))
    await alice_ws.send(chat_frame("a long story please"))
    await recv_until(alice_ws, "delta")
    await bob_ws.send(chat_frame("me too"))
    assert await recv(bob_ws) == {"type": "queued", "position": 1}
    snapshot = await server.ops_snapshot_until(admin, lambda s: state_of(s, bob) == "queued")
    alice_row, bob_row = socket_of(snapshot, alice), socket_of(snapshot, bob)
    assert alice_row is not None and bob_row is not None
    assert alice_row["state"] == "generating" and alice_row["tokens"] > 0
    assert alice_row["tokens_per_s"] > 0
    assert (bob_row["state"], bob_row["queue_position"]) == ("queued", 1)
    engine = snapshot["engine"]
    assert (engine["running"], engine["queue_depth"]) == (1, 1)

    await stop_reply(alice_ws)
    gate.allow_more(1)  # the step in which alice's reply sees its stop; bob's then waits
    alice_done = (await recv_until(alice_ws, "done"))[-1]
    await recv_until(bob_ws, "start")
    snapshot = await server.ops_snapshot_until(admin, lambda s: state_of(s, alice) == "idle")
    alice_row, bob_row = socket_of(snapshot, alice), socket_of(snapshot, bob)
    assert alice_row is not None and bob_row is not None
    assert alice_row["state"] == "idle"
    assert alice_row["tokens"] == alice_done["usage"]["completion_tokens"]
    assert bob_row["state"] == "generating"

    await bob_ws.close()
    snapshot = await server.ops_snapshot_until(admin, lambda s: len(s["sockets"]) == 1)
    assert [row["user"]["id"] for row in snapshot["sockets"]] == [alice]
    await alice_ws.close()
    snapshot = await server.ops_snapshot_until(admin, lambda s: not s["sockets"])
    assert snapshot["sockets"] == []


async def test_bytes_in_and_out_count_each_frames_text(start_server: ServerFactory) -> None:
    server = start_server()
    admin = server.admin_login()
    token, user = server.login_user("counter")
    ws = await server.connect(token)
    ready = await ws.recv()
    ping = '{"type": "ping"}'
    await ws.send(ping)
    pong = await ws.recv()
    expected_in = len(ping.encode())
    expected_out = len(ready.encode()) + len(pong.encode())
    snapshot = await server.ops_snapshot_until(
        admin, lambda s: (socket_of(s, user) or {}).get("bytes_out") == expected_out
    )
    row = socket_of(snapshot, user)
    assert row is not None
    assert (row["bytes_in"], row["bytes_out"]) == (expected_in, expected_out)
    assert row["last_activity"] >= row["connected_at"]
    await ws.close()
