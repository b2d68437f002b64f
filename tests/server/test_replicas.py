"""Two and three real `wxgpt serve` processes sharing PostgreSQL and Redis, driven by real
WebSocket clients: resume and stop across replicas, one reply per user, the ops table,
kick and ban, settings, the login limit, a replica killed mid-reply, Redis restarted."""

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.live_server import chat_frame, passes_for_deltas, recv, recv_until
from tests.pg import new_pg_database
from tests.redis_server import REDIS_URL, PrivateRedis, prefixed
from tests.replicas import (
    ReplicaProcess,
    eventually,
    open_chat,
    replica_env,
    stored_reply,
    text_at_the_gate,
)

# Starting replica processes takes a while on a busy machine; nothing here waits on speed.
pytestmark = [pytest.mark.postgres, pytest.mark.timeout(300)]

ADMIN_PASSWORD = "replicated-secret"
MAX_NEW_TOKENS = 40
Start = Callable[..., list[ReplicaProcess]]
Replicas = list[ReplicaProcess]


def wxgpt(env: dict[str, str], *args: str, stdin: str | None = None) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "server", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@asynccontextmanager
async def replica_set(
    tmp_path: Path, model: Path, redis_url: str = REDIS_URL, **extra: str
) -> AsyncIterator[Start]:
    """A migrated PostgreSQL database, a Redis prefix, an admin, greedy replies; yields a
    function that starts replicas on them."""
    async with new_pg_database() as db_url, prefixed(redis_url) as prefix:
        env = replica_env(
            db_url=db_url, redis_url=redis_url, redis_prefix=prefix, model=model, **extra
        )
        wxgpt(env, "migrate")
        wxgpt(env, "settings", "temperature=0", f"max_new_tokens={MAX_NEW_TOKENS}")
        wxgpt(env, "admin", "create", "root", stdin=ADMIN_PASSWORD + "\n")
        started: list[ReplicaProcess] = []

        def start(*names: str, gate_open: bool = True) -> list[ReplicaProcess]:
            replicas = [ReplicaProcess(name, tmp_path, env) for name in names]
            for replica in replicas:
                if gate_open:
                    replica.gate.open()
                started.append(replica.launch())
            return [replica.wait_until_ready() for replica in replicas]

        try:
            yield start
        finally:
            for replica in started:
                replica.stop()


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Iterator[Replicas]:
    """Three replicas shared by the tests that neither kill one nor restart Redis; their
    gates start closed, and each test uses users of its own."""
    with asyncio.Runner() as runner:
        context = replica_set(tmp_path_factory.mktemp("replicas"), tiny_model)
        start = runner.run(context.__aenter__())
        try:
            yield start("one", "two", "three", gate_open=False)
        finally:
            runner.run(context.__aexit__(None, None, None))


def text_of(frames: list[dict[str, Any]]) -> str:
    return "".join(f["text"] for f in frames if f["type"] == "delta")


def admin_session(replica: ReplicaProcess) -> dict[str, str]:
    response = httpx.post(
        replica.url + "/api/admin/login", json={"username": "root", "password": ADMIN_PASSWORD}
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def test_a_reply_resumed_on_another_replica_streams_on_and_stops_from_there(
    three: Replicas,
) -> None:
    one, two, _ = three
    one.gate.allow_more(1 + passes_for_deltas(1))  # the prefill and a piece's steps
    token, _ = one.login_user("alice")
    ws = await open_chat(one, token)
    await ws.send(chat_frame("tell me everything"))
    start_frame = await recv(ws)
    assert start_frame["type"] == "start"
    received = ""
    while len(received) < 3:
        received += (await recv(ws))["text"]
    await ws.close()

    resumed = await open_chat(two, token)
    resume = {"type": "resume", "message_id": start_frame["message_id"], "offset": 3}
    await resumed.send(json.dumps(resume))
    frames = [await recv(resumed)]
    assert frames[0] == start_frame
    one.gate.allow_more(passes_for_deltas(1))
    frames += await recv_until(resumed, "delta")
    stops = one.gate.cancels()
    await resumed.send(json.dumps({"type": "stop"}))
    await one.gate.until_cancels(stops + 1)  # the stop reached the replica that generates
    one.gate.open()
    frames += await recv_until(resumed, "done")
    done = frames[-1]
    assert done["finish_reason"] == "cancelled"
    assert done["usage"]["completion_tokens"] < MAX_NEW_TOKENS
    reply = stored_reply(two, token, start_frame["conversation_id"])
    assert (reply["status"], reply["id"]) == ("stopped", start_frame["message_id"])
    assert received[:3] + text_of(frames) == reply["content"]
    stopped_after = f"reply {start_frame['message_id']}: model stopped"
    line = next(x for x in one.log_text().splitlines() if stopped_after in x)
    assert int(line.split("model stopped ")[1].split(" steps")[0]) <= 1
    await resumed.close()


async def test_one_reply_per_user_across_replicas_and_quota_never_below_zero(
    three: Replicas,
) -> None:
    token, user_id = three[0].login_user("bob")
    admin = admin_session(three[0])
    quota = {"action": "set", "amount": 5, "reason": "test"}
    httpx.post(f"{three[0].url}/api/admin/users/{user_id}/quota", json=quota, headers=admin)
    first, second = await open_chat(three[0], token), await open_chat(three[1], token)
    three[0].gate.allow_more(1)
    three[1].gate.allow_more(1)
    await asyncio.gather(first.send(chat_frame("me first")), second.send(chat_frame("no, me")))
    answers = [await recv(first), await recv(second)]
    assert sorted(a["type"] for a in answers) == ["error", "start"], "one reply, the other busy"
    assert next(a for a in answers if a["type"] == "error")["code"] == "busy"
    for replica in three:
        replica.gate.open()
    await first.close()
    await second.close()

    sockets = [await open_chat(three[n % 3], token) for n in range(20)]

    async def chat_until_exhausted(ws: ClientConnection) -> int:
        replies = 0
        while True:
            await ws.send(chat_frame("again"))
            last = (await recv_until(ws, "done", "error"))[-1]
            if last["type"] == "done":
                replies += 1
            elif last["code"] == "quota_exhausted":
                return replies
            else:
                assert last["code"] == "busy", last
                await asyncio.sleep(0.05)

    replies = await asyncio.gather(*(chat_until_exhausted(ws) for ws in sockets))
    me = httpx.get(three[2].url + "/api/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["quota"] == 0
    assert sum(replies) == 5 - 1, "the first reply took one unit already"
    for ws in sockets:
        await ws.close()
    for replica in three:
        replica.gate.allow_more(0)


async def test_ops_kick_stop_and_ban_reach_the_right_replica(three: Replicas) -> None:
    one, two, _ = three
    admin = admin_session(two)
    carol_token, carol = one.login_user("carol")
    dave_token, dave = two.login_user("dave")
    carol_ws = await open_chat(one, carol_token)
    dave_ws = await open_chat(two, dave_token)

    def rows_by_user(replica: ReplicaProcess) -> dict[int, dict[str, Any]] | None:
        snapshot = httpx.get(replica.url + "/api/ops/snapshot", headers=admin).json()
        rows = {row["user"]["id"]: row for row in snapshot["sockets"]}
        return rows if {carol, dave} <= set(rows) else None

    for replica in (one, two):
        rows = await eventually(lambda r=replica: rows_by_user(r))
        assert (rows[carol]["replica"], rows[dave]["replica"]) == ("one", "two")

    async with connect(two.ws_url.replace("/ws/chat", "/ws/ops"), additional_headers=admin) as ops:
        snapshot = json.loads(await ops.recv())
        ours = [row for row in snapshot["sockets"] if row["user"]["id"] in {carol, dave}]
        assert sorted(row["replica"] for row in ours) == ["one", "two"]

    kicked = httpx.post(f"{two.url}/api/ops/sockets/{rows[carol]['id']}/disconnect", headers=admin)
    assert kicked.status_code == 204
    with pytest.raises(ConnectionClosed) as closed:
        await recv(carol_ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4000

    two.gate.allow_more(2)  # the prefill and one step; then the reply waits
    await dave_ws.send(chat_frame("a long one"))
    assert (await recv(dave_ws))["type"] == "start"
    stops = two.gate.cancels()
    stopped = httpx.post(f"{one.url}/api/ops/sockets/{rows[dave]['id']}/stop", headers=admin)
    assert stopped.status_code == 204
    await two.gate.until_cancels(stops + 1)
    two.gate.open()
    done = (await recv_until(dave_ws, "done"))[-1]
    assert done["finish_reason"] == "cancelled"
    assert done["usage"]["completion_tokens"] <= 3

    carol_again = await open_chat(one, carol_token)
    banned = httpx.post(f"{two.url}/api/admin/users/{carol}/ban", json={}, headers=admin)
    assert banned.status_code == 200
    with pytest.raises(ConnectionClosed) as closed:
        await recv(carol_again)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    await dave_ws.close()


async def test_a_settings_change_applies_to_the_next_reply_on_every_replica(
    three: Replicas,
) -> None:
    one, two, _ = three
    two.gate.open()
    admin = admin_session(one)
    changed = httpx.put(one.url + "/api/admin/settings", json={"max_new_tokens": 3}, headers=admin)
    assert changed.status_code == 200
    token, _ = two.login_user("erin")
    ws = await open_chat(two, token)
    await ws.send(chat_frame("short please"))
    done = (await recv_until(ws, "done"))[-1]
    assert done["usage"]["completion_tokens"] == 3
    await ws.close()
    restore = {"max_new_tokens": MAX_NEW_TOKENS}
    httpx.put(one.url + "/api/admin/settings", json=restore, headers=admin)
    two.gate.allow_more(0)


async def test_a_replica_killed_mid_reply_leaves_it_to_a_survivor(
    tmp_path: Path, tiny_model: Path
) -> None:
    async with replica_set(tmp_path, tiny_model) as start:
        doomed, survivor = start("doomed", "survivor", gate_open=False)
        victim_token, _ = doomed.login_user("frank")
        other_token, _ = survivor.login_user("grace")
        passes = 1 + passes_for_deltas(1)  # the prefill and a piece's steps, then it waits
        doomed.gate.allow_more(passes)
        survivor.gate.allow_more(3)
        victim_ws = await open_chat(doomed, victim_token)
        other_ws = await open_chat(survivor, other_token)
        await victim_ws.send(chat_frame("cut me off"))
        await other_ws.send(chat_frame("keep me going"))
        victim_start = await recv(victim_ws)
        received = await text_at_the_gate(victim_ws, doomed.gate, passes)
        assert received
        other_start = await recv(other_ws)
        assert other_start["type"] == "start"
        conversation = victim_start["conversation_id"]
        await eventually(lambda: stored_reply(survivor, victim_token, conversation)["content"])

        doomed.kill()
        reply = await eventually(
            lambda: (
                (r := stored_reply(survivor, victim_token, conversation))
                and r["status"] == "interrupted"
                and r
            ),
            timeout=20,
        )
        assert (reply["finish_reason"], reply["content"]) == ("interrupted", received)
        me = httpx.get(
            survivor.url + "/api/me", headers={"Authorization": f"Bearer {victim_token}"}
        )
        assert me.json()["quota"] == 100, "the lost reply was refunded"

        survivor.gate.open()
        other_done = (await recv_until(other_ws, "done"))[-1]
        assert other_done["finish_reason"] == "length", "the survivor's own reply went on"

        resumed = await open_chat(survivor, victim_token)
        offset = len(received) + 5  # a client may hold more than was saved
        resume = {"type": "resume", "message_id": victim_start["message_id"], "offset": offset}
        await resumed.send(json.dumps(resume))
        frames = await recv_until(resumed, "done")
        assert [f["type"] for f in frames] == ["start", "done"]
        assert frames[-1]["finish_reason"] == "interrupted"
        await resumed.close()
        await other_ws.close()


async def test_redis_restarted_mid_run(tmp_path: Path, tiny_model: Path) -> None:
    redis = PrivateRedis(tmp_path).start()
    try:
        async with replica_set(tmp_path, tiny_model, redis_url=redis.url) as start:
            one, two = start("one", "two")
            token, _ = one.login_user("heidi")
            redis.stop()
            ws = await open_chat(one, token)
            await ws.send(chat_frame("while redis is away"))
            frames = await recv_until(ws, "done")
            assert frames[-1]["finish_reason"] == "length", "chats still start, degraded"
            ready = httpx.get(one.url + "/readyz").json()
            assert ready["coordination"]["up"] is False
            reply = stored_reply(one, token, frames[0]["conversation_id"])
            assert (reply["status"], reply["content"]) == ("complete", text_of(frames))

            redis.start()  # empty: nothing of before survives a restart without persistence
            await eventually(lambda: httpx.get(one.url + "/readyz").json()["coordination"]["up"])
            await eventually(lambda: httpx.get(two.url + "/readyz").json()["coordination"]["up"])
            one.gate.allow_more(2)
            await ws.send(chat_frame("and after"))
            start_frame = await recv(ws)
            await ws.close()
            resumed = await open_chat(two, token)
            resume = {"type": "resume", "message_id": start_frame["message_id"], "offset": 0}
            await resumed.send(json.dumps(resume))
            assert await recv(resumed) == start_frame
            running = stored_reply(two, token, start_frame["conversation_id"])
            assert running["status"] == "generating", "followed live, not replayed"
            one.gate.open()
            frames = await recv_until(resumed, "done")
            assert frames[-1]["finish_reason"] == "length"
            stored = stored_reply(two, token, start_frame["conversation_id"])
            assert text_of(frames) == stored["content"]
            await resumed.close()
    finally:
        redis.stop()


# Last: it locks the test's address out of admin logins for the replicas of `three`.
async def test_the_login_limit_counts_failures_on_every_replica(three: Replicas) -> None:
    one, two, _ = three

    def wrong(replica: ReplicaProcess) -> int:
        return httpx.post(
            replica.url + "/api/admin/login", json={"username": "root", "password": "nope"}
        ).status_code

    assert [wrong(one), wrong(two), wrong(one), wrong(two), wrong(one)] == [401] * 5
    assert wrong(two) == 429, "the failures on both replicas add up"
