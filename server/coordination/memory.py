"""The in-process backend: one replica, nothing to run beside it.

State lives in a MemoryHub. Each coordinator gets a hub of its own unless given one, so
several apps in one process (tests) can share a hub and behave as replicas of one set-up.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from server.coordination.base import (
    Command,
    CommandHandler,
    Coordinator,
    ReplyEvent,
    Row,
)

logger = logging.getLogger(__name__)


@dataclass
class _Stream:
    events: list[ReplyEvent] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class MemoryHub:
    """The shared state of the replicas of one process."""

    def __init__(self) -> None:
        self.leases: dict[str, str] = {}
        self.rows: dict[str, dict[str, Row]] = {}
        self.streams: dict[int, _Stream] = {}
        self.values: dict[str, tuple[str, float]] = {}
        self.handlers: dict[str, CommandHandler] = {}

    def value(self, key: str) -> str | None:
        """The unexpired value at `key`."""
        found = self.values.get(key)
        if found is None:
            return None
        if found[1] <= time.monotonic():
            del self.values[key]
            return None
        return found[0]


class MemoryCoordinator(Coordinator):
    """Shared state held in this process (WXGPT_REDIS_URL unset)."""

    backend = "memory"

    def __init__(self, replica_id: str, lease_seconds: float, hub: MemoryHub | None = None):
        super().__init__(replica_id, lease_seconds)
        self._shared = hub is not None
        self.hub = hub or MemoryHub()

    @property
    def shared(self) -> bool:
        """Only when given a hub that other coordinators of this process use too."""
        return self._shared

    async def start(self, on_command: CommandHandler) -> None:
        self.hub.handlers[self.replica_id] = on_command
        self.hub.rows[self.replica_id] = {}

    async def close(self) -> None:
        self.hub.handlers.pop(self.replica_id, None)
        self.hub.rows.pop(self.replica_id, None)
        for key in [k for k, holder in self.hub.leases.items() if holder == self.replica_id]:
            del self.hub.leases[key]

    async def claim(self, key: str) -> bool:
        if key in self.hub.leases:
            return False
        self.hub.leases[key] = self.replica_id
        return True

    async def release(self, key: str) -> None:
        if self.hub.leases.get(key) == self.replica_id:
            del self.hub.leases[key]

    async def holder(self, key: str) -> str | None:
        return self.hub.leases.get(key)

    async def replica_alive(self, replica_id: str) -> bool:
        return replica_id in self.hub.handlers

    async def put_rows(self, upsert: list[Row], remove: list[str]) -> None:
        rows = self.hub.rows.setdefault(self.replica_id, {})
        for row in upsert:
            rows[row["id"]] = row
        for socket_id in remove:
            rows.pop(socket_id, None)

    async def other_rows(self) -> list[Row]:
        return [
            row
            for replica, rows in self.hub.rows.items()
            if replica != self.replica_id
            for row in rows.values()
        ]

    async def publish(self, message_id: int, events: list[ReplyEvent]) -> None:
        stream = self.hub.streams.setdefault(message_id, _Stream())
        stream.events.extend(events)
        stream.changed.set()
        stream.changed = asyncio.Event()
        if any(event["type"] == "end" for event in events):
            # Kept a while for followers that arrive just after the end.
            asyncio.get_running_loop().call_later(
                self.lease_seconds * 4, self.hub.streams.pop, message_id, None
            )

    async def follow(self, message_id: int, idle_timeout: float) -> AsyncIterator[ReplyEvent]:
        sent = 0
        while True:
            stream = self.hub.streams.get(message_id)
            events = stream.events if stream is not None else []
            while sent < len(events):
                event = events[sent]
                sent += 1
                yield event
                if event["type"] == "end":
                    return
            try:
                if stream is None:
                    await asyncio.sleep(idle_timeout)
                    raise TimeoutError
                await asyncio.wait_for(stream.changed.wait(), idle_timeout)
            except TimeoutError:
                yield {"type": "idle"}

    async def send(self, command: Command, to: str | None = None) -> None:
        targets = list(self.hub.handlers) if to is None else [to]
        for replica in targets:
            handler = self.hub.handlers.get(replica)
            if handler is None:
                continue
            try:
                await handler(command)
            except Exception:
                logger.exception("command %s failed on replica %s", command.get("op"), replica)

    async def incr(self, key: str, ttl: float, by: int = 1) -> int:
        current = self.hub.value(key)
        if current is None:
            self.hub.values[key] = (str(by), time.monotonic() + ttl)
            return by
        count = int(current) + by
        self.hub.values[key] = (str(count), self.hub.values[key][1])
        return count

    async def get(self, key: str) -> str | None:
        return self.hub.value(key)

    async def set(self, key: str, value: str, ttl: float) -> None:
        self.hub.values[key] = (value, time.monotonic() + ttl)

    async def take(self, key: str) -> str | None:
        value = self.hub.value(key)
        self.hub.values.pop(key, None)
        return value

    async def delete(self, *keys: str) -> None:
        for key in keys:
            self.hub.values.pop(key, None)

    async def ttl(self, key: str) -> float:
        if self.hub.value(key) is None:
            return 0.0
        return max(0.0, self.hub.values[key][1] - time.monotonic())
