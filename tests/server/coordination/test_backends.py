"""The coordination interface, run the same way on both backends: two replicas (two
coordinators on one memory hub, or on one Redis) sharing leases, presence, reply streams,
commands and counters."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from server.coordination import coordinator_for
from server.coordination.base import Command, Coordinator
from server.coordination.memory import MemoryCoordinator, MemoryHub
from server.coordination.redis import RedisCoordinator
from tests.redis_server import REDIS_URL, PrivateRedis, prefixed

LEASE = 1.0
Replicas = Callable[[], Awaitable[tuple[Coordinator, list[Command]]]]


@pytest.fixture(params=["memory", "redis"])
async def replicas(request: pytest.FixtureRequest) -> AsyncIterator[Replicas]:
    """Makes started replicas of one set-up; each comes with the commands it received."""
    async with AsyncExitStack() as stack:
        hub = MemoryHub()
        prefix = await stack.enter_async_context(prefixed()) if request.param == "redis" else ""

        async def make() -> tuple[Coordinator, list[Command]]:
            received: list[Command] = []

            async def on_command(command: Command) -> None:
                received.append(command)

            coordinator: Coordinator = (
                MemoryCoordinator(f"m{len(hub.handlers)}", LEASE, hub)
                if request.param == "memory"
                else coordinator_for(REDIS_URL, lease_seconds=LEASE, prefix=prefix)
            )
            await coordinator.start(on_command)
            stack.push_async_callback(coordinator.close)
            return coordinator, received

        yield make


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.02)


async def test_a_lease_has_one_holder_until_released(replicas: Replicas) -> None:
    (one, _), (two, _) = await replicas(), await replicas()
    assert await one.claim("busy:7")
    assert not await two.claim("busy:7")
    assert not await one.claim("busy:7"), "a second claim of the same key fails too"
    assert await two.holder("busy:7") == one.replica_id
    await two.release("busy:7")
    assert await one.holder("busy:7") == one.replica_id, "only the holder can release"
    await one.release("busy:7")
    assert await two.claim("busy:7")
    assert await one.replica_alive(two.replica_id)


async def test_presence_rows_are_seen_by_the_other_replicas(replicas: Replicas) -> None:
    (one, _), (two, _) = await replicas(), await replicas()
    await one.put_rows([{"id": "s1", "user": {"id": 1}}, {"id": "s2", "user": {"id": 2}}], [])
    await one.put_rows([{"id": "s1", "user": {"id": 1}, "state": "generating"}], ["s2"])
    assert await two.other_rows() == [{"id": "s1", "user": {"id": 1}, "state": "generating"}]
    assert await one.other_rows() == []
    await one.close()
    assert await two.other_rows() == [], "a replica that left takes its rows along"


async def test_a_reply_stream_is_followed_from_its_start_then_live(replicas: Replicas) -> None:
    (owner, _), (follower, _) = await replicas(), await replicas()
    await owner.publish(5, [{"type": "start"}, {"type": "delta", "text": "Hel"}])
    seen: list[dict[str, Any]] = []

    async def follow() -> None:
        async for event in follower.follow(5, idle_timeout=0.2):
            seen.append(event)

    following = asyncio.create_task(follow())
    await until(lambda: _length_is(seen, 2))
    await owner.publish(6, [{"type": "delta", "text": "elsewhere"}])
    await owner.publish(5, [{"type": "delta", "text": "lo"}, {"type": "end", "frame": {}}])
    await asyncio.wait_for(following, 10)
    kinds = [event["type"] for event in seen if event["type"] != "idle"]
    assert kinds == ["start", "delta", "delta", "end"]
    assert "".join(e.get("text", "") for e in seen) == "Hello"


async def _length_is(events: list[dict[str, Any]], n: int) -> bool:
    return len([e for e in events if e["type"] != "idle"]) >= n


async def test_a_quiet_stream_says_so_instead_of_hanging(replicas: Replicas) -> None:
    (_, _), (follower, _) = await replicas(), await replicas()
    stream = follower.follow(99, idle_timeout=0.1)
    assert await asyncio.wait_for(anext(stream), 5) == {"type": "idle"}
    await stream.aclose()


async def test_commands_reach_one_replica_or_all(replicas: Replicas) -> None:
    (one, one_got), (two, two_got) = await replicas(), await replicas()
    await one.send({"op": "stop", "message_id": 3}, to=two.replica_id)
    await until(lambda: _truthy(two_got))
    await one.send({"op": "close_user", "user_id": 4})
    await until(lambda: _truthy(len(one_got) == 1 and len(two_got) == 2))
    assert one_got == [{"op": "close_user", "user_id": 4}]
    assert two_got == [{"op": "stop", "message_id": 3}, {"op": "close_user", "user_id": 4}]


async def test_a_command_sent_the_moment_a_replica_has_started_reaches_it(
    replicas: Replicas,
) -> None:
    (one, _) = await replicas()
    await one.claim("warm")  # the sender's connection is open, so it publishes at once
    (two, two_got) = await replicas()
    await one.send({"op": "stop", "message_id": 5}, to=two.replica_id)
    await until(lambda: _truthy(two_got))
    assert two_got == [{"op": "stop", "message_id": 5}]


async def _truthy(value: object) -> bool:
    return bool(value)


async def test_counters_count_every_concurrent_increment_once(replicas: Replicas) -> None:
    (one, _), (two, _) = await replicas(), await replicas()
    counts = await asyncio.gather(
        *(replica.incr("login:count:x", 60) for replica in [one, two] * 50)
    )
    assert sorted(counts) == list(range(1, 101))
    assert await one.incr("login:count:x", 60, by=-1) == 99
    assert 0 < await two.ttl("login:count:x") <= 60
    await one.set("token", "abc", 60)
    assert await two.get("token") == "abc"
    await one.set("ticket", "once", 60)
    taken = await asyncio.gather(one.take("ticket"), two.take("ticket"), two.take("ticket"))
    assert (taken.count("once"), taken.count(None)) == (1, 2), "one taker gets it"
    await two.delete("token", "login:count:x")
    assert (await one.get("token"), await one.ttl("login:count:x")) == (None, 0.0)


async def test_values_expire(replicas: Replicas) -> None:
    (one, _), (two, _) = await replicas(), await replicas()
    await one.set("short", "v", 0.2)
    await until(lambda: _is_none(two.get("short")))


async def _is_none(value: Awaitable[str | None]) -> bool:
    return await value is None


def test_backends_are_chosen_by_url() -> None:
    assert isinstance(coordinator_for(None, lease_seconds=5, prefix="p"), MemoryCoordinator)
    assert isinstance(
        coordinator_for("redis://127.0.0.1:6379/0", lease_seconds=5, prefix="p"), RedisCoordinator
    )
    with pytest.raises(ValueError, match=r"redis:// or rediss://"):
        coordinator_for("amqp://127.0.0.1", lease_seconds=5, prefix="p")


async def test_a_crashed_replica_lets_go_of_its_leases_after_one_lease(tmp_path: Path) -> None:
    async with prefixed() as prefix:
        crashed = RedisCoordinator("crashed", LEASE, REDIS_URL, prefix)
        survivor = RedisCoordinator("survivor", LEASE, REDIS_URL, prefix)
        await crashed.start(_ignore)
        await survivor.start(_ignore)
        try:
            assert await crashed.claim("busy:1")
            await crashed.put_rows([{"id": "s", "user": {"id": 1}}], [])
            await asyncio.sleep(LEASE)
            assert await crashed.holder("busy:1") == "crashed", "renewed while alive"
            for task in crashed._tasks:  # what kill -9 does to its heartbeat
                task.cancel()
            await until(lambda: survivor.claim("busy:1"), timeout=LEASE * 3)
            # Killed between renewing its own key and its leases, the replica's key can
            # outlive the lease by one heartbeat.
            await until(lambda: _is_false(survivor.replica_alive("crashed")), timeout=LEASE * 3)
            assert await survivor.other_rows() == []
        finally:
            await survivor.close()


async def _is_false(value: Awaitable[bool]) -> bool:
    return not await value


async def _ignore(command: Command) -> None:
    return None


async def test_while_redis_is_down_a_replica_serves_alone_then_takes_its_leases_back(
    tmp_path: Path,
) -> None:
    redis = PrivateRedis(tmp_path).start()
    one = RedisCoordinator("one", LEASE, redis.url, "p")
    two = RedisCoordinator("two", LEASE, redis.url, "p")
    got: list[Command] = []

    async def on_command(command: Command) -> None:
        got.append(command)

    await one.start(on_command)
    await two.start(_ignore)
    try:
        assert await one.claim("busy:1")
        redis.stop()
        assert await one.claim("busy:2"), "claims still work, for this replica alone"
        assert not await one.claim("busy:2")
        assert await one.incr("login:count:a", 60) == 1
        await one.send({"op": "stop", "message_id": 1}, to="one")
        assert got == [{"op": "stop", "message_id": 1}], "its own commands still arrive"
        assert not one.health().up
        assert "Redis unreachable" in (one.health().reason or "")
        assert await one.other_rows() == []

        redis.start()  # empty: a restart without persistence loses every key
        await until(lambda: _truthy(one.health().up), timeout=LEASE * 10)
        await until(lambda: _holder_is(two, "busy:1", "one"), timeout=LEASE * 3)
        assert one.epoch >= 1, "presence knows to publish every row again"
        assert await two.replica_alive("one")
    finally:
        await one.close()
        await two.close()
        redis.stop()


async def _holder_is(coordinator: Coordinator, key: str, replica: str) -> bool:
    return await coordinator.holder(key) == replica
