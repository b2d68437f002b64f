"""The Redis backend (WXGPT_REDIS_URL=redis://…): state shared by every replica.

Leases are keys with expiry renewed by a heartbeat; presence is one hash per replica that
expires with it; reply streams are Redis streams; commands go over pub/sub.

When Redis cannot be reached, the replica keeps serving in a degraded mode: leases,
counters and values fall back to this process alone (chats still start; nothing stored is
at stake, since quota and messages live in the database), reply streams and other
replicas' presence are unavailable, and health() says so. Once Redis answers again, the
heartbeat takes the replica's leases back and presence is published whole again.
"""

import asyncio
import functools
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ConstantBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from server.coordination.base import (
    Command,
    CommandHandler,
    CoordinationHealth,
    Coordinator,
    ReplyEvent,
    Row,
)
from server.coordination.memory import MemoryCoordinator

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Renews a lease this replica holds, or takes it back if it vanished (Redis restarted).
_RENEW = """
local held = redis.call('get', KEYS[1])
if held == ARGV[1] or not held then
    redis.call('set', KEYS[1], ARGV[1], 'px', ARGV[2])
    return 1
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_INCR = """
local count = redis.call('incrby', KEYS[1], ARGV[2])
if redis.call('pttl', KEYS[1]) < 0 then redis.call('pexpire', KEYS[1], ARGV[1]) end
return count
"""
BROADCAST = "all"
# Streams are trimmed to about this many events: a reply's deltas are batched, so this is
# far more than any reply needs.
STREAM_MAXLEN = 20_000
RECONNECT_DELAY_S = 1.0
# How long start() waits for Redis to confirm the command subscriptions.
SUBSCRIBED_WITHIN_S = 10.0


class RedisCoordinator(Coordinator):
    """Shared state in Redis, with a fallback to this process while Redis is down."""

    backend = "redis"

    def __init__(self, replica_id: str, lease_seconds: float, url: str, prefix: str) -> None:
        super().__init__(replica_id, lease_seconds)
        self._redis = aioredis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=5,
            socket_connect_timeout=5,
            # After a Redis restart the pool still holds connections the server closed: a
            # command on one is tried once more on a fresh connection, and a connection idle
            # for a lease is checked before use, instead of a false "Redis is down" that would
            # send a reply's events to this process only.
            retry=Retry(ConstantBackoff(0.05), retries=1),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
            health_check_interval=lease_seconds,
        )
        self._prefix = prefix + ":"
        self._fallback = MemoryCoordinator(replica_id, lease_seconds)
        self._held: set[str] = set()
        self._down: str | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._on_command: CommandHandler | None = None
        self._subscribed = asyncio.Event()
        self._renew = self._redis.register_script(_RENEW)
        self._release = self._redis.register_script(_RELEASE)
        self._incr = self._redis.register_script(_INCR)

    def _key(self, name: str) -> str:
        return self._prefix + name

    @property
    def _lease_ms(self) -> int:
        return int(self.lease_seconds * 1000)

    async def start(self, on_command: CommandHandler) -> None:
        self._on_command = on_command
        await self._fallback.start(on_command)
        await self._guarded(self._heartbeat_once, None)
        self._tasks = [
            asyncio.create_task(self._heartbeat_forever(), name="wxgpt-coordination-heartbeat"),
            asyncio.create_task(self._listen_forever(), name="wxgpt-coordination-commands"),
        ]
        if self._down is None:
            # A command published before Redis has the subscription reaches nobody: the
            # replica only counts as started once it hears its commands.
            try:
                await asyncio.wait_for(self._subscribed.wait(), SUBSCRIBED_WITHIN_S)
            except TimeoutError:
                logger.warning(
                    "Redis did not confirm the command subscriptions within %.0f s",
                    SUBSCRIBED_WITHIN_S,
                )

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        keys = [self._key(f"replica:{self.replica_id}"), self._key(f"presence:{self.replica_id}")]
        held = list(self._held)
        self._held.clear()

        async def let_go() -> None:
            for key in held:
                await self._release(keys=[self._key(key)], args=[self.replica_id])
            await self._redis.delete(*keys)
            await self._redis.srem(self._key("replicas"), self.replica_id)

        await self._guarded(let_go, None)
        await self._fallback.close()
        await self._redis.aclose()

    def health(self) -> CoordinationHealth:
        if self._down is not None:
            return CoordinationHealth(self.backend, False, f"Redis unreachable: {self._down}")
        return CoordinationHealth(self.backend, True)

    async def _guarded(self, work: Callable[[], Awaitable[T]], fallback: T) -> T:
        """Run a Redis call; while Redis is down, note it and give `fallback` instead."""
        try:
            result = await work()
        except (RedisError, OSError) as exc:
            if self._down is None:
                logger.warning("Redis is unreachable, serving degraded: %s", exc)
            self._down = str(exc) or type(exc).__name__
            return fallback
        return result

    # Heartbeat: the replica's own lease, every held key, the presence hash.

    async def _heartbeat_once(self) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self._key(f"replica:{self.replica_id}"), "1", px=self._lease_ms)
            pipe.sadd(self._key("replicas"), self.replica_id)
            pipe.pexpire(self._key(f"presence:{self.replica_id}"), self._lease_ms)
            await pipe.execute()
        for key in list(self._held):
            renewed = await self._renew(
                keys=[self._key(key)], args=[self.replica_id, self._lease_ms]
            )
            if not renewed:
                logger.warning("lost the lease on %s to another replica", key)
                self._held.discard(key)
        if self._down is not None:
            logger.info("Redis is reachable again; leases and presence taken back")
            self._down = None
            self.epoch += 1

    async def _heartbeat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            await self._guarded(self._heartbeat_once, None)

    # Commands over pub/sub.

    async def _listen_forever(self) -> None:
        channels = [self._key(f"cmd:{self.replica_id}"), self._key(f"cmd:{BROADCAST}")]
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(*channels)
                    async for message in pubsub.listen():
                        if message["type"] == "message":
                            await self._deliver(message["data"])
                        elif message["type"] == "subscribe" and message["data"] == len(channels):
                            self._subscribed.set()
            except (RedisError, OSError) as exc:
                if self._down is None:
                    logger.warning("Redis command channel lost: %s", exc)
                    self._down = str(exc) or type(exc).__name__
                await asyncio.sleep(RECONNECT_DELAY_S)

    async def _deliver(self, data: str) -> None:
        assert self._on_command is not None
        try:
            command = json.loads(data)
            await self._on_command(command)
        except Exception:
            logger.exception("command from the coordination channel failed: %.200s", data)

    async def send(self, command: Command, to: str | None = None) -> None:
        channel = self._key(f"cmd:{to or BROADCAST}")
        data = json.dumps(command)

        async def publish() -> bool:
            await self._redis.publish(channel, data)
            return True

        if not await self._guarded(publish, False) and to in (None, self.replica_id):
            # Redis is down: this replica at least still hears its own commands.
            await self._deliver(data)

    # Leases.

    async def claim(self, key: str) -> bool:
        if self._down is not None:
            return await self._fallback.claim(key)

        async def take() -> bool:
            return bool(
                await self._redis.set(self._key(key), self.replica_id, nx=True, px=self._lease_ms)
            )

        taken = await self._guarded(take, None)
        if taken is None:
            return await self._fallback.claim(key)
        if taken:
            self._held.add(key)
        return taken

    async def release(self, key: str) -> None:
        await self._fallback.release(key)
        if key in self._held:
            self._held.discard(key)
            await self._guarded(
                lambda: self._release(keys=[self._key(key)], args=[self.replica_id]), None
            )

    async def holder(self, key: str) -> str | None:
        if self._down is not None:
            return await self._fallback.holder(key)
        return await self._guarded(functools.partial(self._read, key), None)

    async def replica_alive(self, replica_id: str) -> bool:
        if replica_id == self.replica_id:
            return True
        found = await self._guarded(
            lambda: self._redis.exists(self._key(f"replica:{replica_id}")), 0
        )
        return bool(found)

    # Presence.

    async def put_rows(self, upsert: list[Row], remove: list[str]) -> None:
        key = self._key(f"presence:{self.replica_id}")

        async def write() -> None:
            async with self._redis.pipeline(transaction=False) as pipe:
                if upsert:
                    pipe.hset(key, mapping={row["id"]: json.dumps(row) for row in upsert})
                if remove:
                    pipe.hdel(key, *remove)
                pipe.pexpire(key, self._lease_ms)
                await pipe.execute()

        await self._guarded(write, None)

    async def other_rows(self) -> list[Row]:
        async def read() -> list[Row]:
            members = await self._redis.smembers(self._key("replicas"))
            replicas = {m.decode() if isinstance(m, bytes) else str(m) for m in members}
            rows: list[Row] = []
            for replica in sorted(replicas - {self.replica_id}):
                if not await self._redis.exists(self._key(f"replica:{replica}")):
                    await self._redis.srem(self._key("replicas"), replica)
                    continue
                stored = await self._redis.hgetall(self._key(f"presence:{replica}"))
                rows.extend(json.loads(value) for value in stored.values())
            return rows

        return await self._guarded(read, [])

    # Reply streams.

    async def publish(self, message_id: int, events: list[ReplyEvent]) -> None:
        key = self._key(f"stream:{message_id}")
        ended = any(event["type"] == "end" for event in events)

        async def append() -> None:
            async with self._redis.pipeline(transaction=False) as pipe:
                for event in events:
                    pipe.xadd(key, {"e": json.dumps(event)}, maxlen=STREAM_MAXLEN, approximate=True)
                # A stream outlives its reply a little, for followers that arrive late; one
                # whose owner crashed expires on its own.
                pipe.pexpire(key, self._lease_ms * (4 if ended else 8))
                await pipe.execute()

        await self._guarded(append, None)

    async def follow(self, message_id: int, idle_timeout: float) -> AsyncIterator[ReplyEvent]:
        key = self._key(f"stream:{message_id}")
        last = "0-0"
        block_ms = int(idle_timeout * 1000)
        while True:
            found: Any = await self._guarded(
                functools.partial(self._redis.xread, {key: last}, count=500, block=block_ms), None
            )
            if not found:
                if self._down is not None:
                    await asyncio.sleep(idle_timeout)
                yield {"type": "idle"}
                continue
            for entry_id, fields in found[0][1]:
                last = entry_id
                event: ReplyEvent = json.loads(fields["e"])
                yield event
                if event["type"] == "end":
                    return

    # Counters and values.

    async def incr(self, key: str, ttl: float, by: int = 1) -> int:
        if self._down is not None:
            return await self._fallback.incr(key, ttl, by)
        count = await self._guarded(
            lambda: self._incr(keys=[self._key(key)], args=[int(ttl * 1000), by]), None
        )
        return int(count) if count is not None else await self._fallback.incr(key, ttl, by)

    async def get(self, key: str) -> str | None:
        if self._down is not None:
            return await self._fallback.get(key)
        return await self._guarded(functools.partial(self._read, key), None)

    async def _read(self, key: str) -> str | None:
        value = await self._redis.get(self._key(key))
        return value.decode() if isinstance(value, bytes) else value

    async def set(self, key: str, value: str, ttl: float) -> None:
        await self._fallback.set(key, value, ttl)
        await self._guarded(
            lambda: self._redis.set(self._key(key), value, px=max(1, int(ttl * 1000))), None
        )

    async def take(self, key: str) -> str | None:
        fallback = await self._fallback.take(key)
        if self._down is not None:
            return fallback

        async def getdel() -> str | None:
            value = await self._redis.getdel(self._key(key))
            return value.decode() if isinstance(value, bytes) else value

        return await self._guarded(getdel, None) or fallback

    async def delete(self, *keys: str) -> None:
        await self._fallback.delete(*keys)
        if keys:
            await self._guarded(lambda: self._redis.delete(*(self._key(k) for k in keys)), None)

    async def ttl(self, key: str) -> float:
        if self._down is not None:
            return await self._fallback.ttl(key)
        left = await self._guarded(lambda: self._redis.pttl(self._key(key)), -2)
        return max(0, int(left)) / 1000
