"""What replicas share while they run, behind one small interface.

As in encode/broadcaster, a tiny base class with backends chosen by URL: `memory://` keeps
everything in this process (one replica, the default), `redis://` shares it between
replicas. Five kinds of shared state, each a few methods:

- leases: a key held by one replica until released or until the replica stops renewing it
  (the replica itself, the one running reply of a user, the owner of a reply);
- presence: each replica's socket rows, gone with the replica's lease;
- reply streams: the events of a reply being generated, for a replica resuming it;
- commands: messages to one replica or to all (kick, stop, ban, settings changed);
- counters and values with expiry (rate limits, shared tokens).
"""

import secrets
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

Row = dict[str, Any]
Command = dict[str, Any]
CommandHandler = Callable[[Command], Awaitable[None]]
# A reply stream's events: {"type": "queued" | "start" | "delta" | "end", ...}; "end" carries
# the reply's last frame (`done` or `error`) under "frame".
ReplyEvent = dict[str, Any]


def new_replica_id() -> str:
    """A short random id naming this process in logs, the ops panel and leases."""
    return secrets.token_hex(4)


@dataclass(frozen=True)
class CoordinationHealth:
    """Whether the shared state is reachable; `reason` says why not."""

    backend: str
    up: bool
    reason: str | None = None


class Coordinator(ABC):
    """One replica's handle on the state it shares with the others."""

    backend: str
    # Bumped whenever the shared store lost what replicas had put there (a restart without
    # persistence), so they put it there again.
    epoch = 0

    def __init__(self, replica_id: str, lease_seconds: float) -> None:
        self.replica_id = replica_id
        self.lease_seconds = lease_seconds

    @property
    def shared(self) -> bool:
        """Whether other replicas can see what this one publishes."""
        return True

    @abstractmethod
    async def start(self, on_command: CommandHandler) -> None:
        """Connect, take the replica's own lease and start delivering commands."""

    @abstractmethod
    async def close(self) -> None:
        """Release what this replica holds and disconnect."""

    def health(self) -> CoordinationHealth:
        """Whether the shared state can be reached now."""
        return CoordinationHealth(self.backend, True)

    # Leases. A claim is renewed by the coordinator until released; it lapses
    # `lease_seconds` after the replica stops renewing it (a crash).

    @abstractmethod
    async def claim(self, key: str) -> bool:
        """Hold `key` for this replica; False if another holder has it."""

    @abstractmethod
    async def release(self, key: str) -> None:
        """Give `key` up if this replica holds it."""

    @abstractmethod
    async def holder(self, key: str) -> str | None:
        """The replica holding `key`, or None."""

    @abstractmethod
    async def replica_alive(self, replica_id: str) -> bool:
        """Whether that replica still renews its lease."""

    # Presence: this replica's socket rows, visible to the others until its lease lapses.

    @abstractmethod
    async def put_rows(self, upsert: list[Row], remove: list[str]) -> None:
        """Publish this replica's changed and closed sockets."""

    @abstractmethod
    async def other_rows(self) -> list[Row]:
        """The rows of every other live replica, each with its "replica"."""

    # Reply streams.

    @abstractmethod
    async def publish(self, message_id: int, events: list[ReplyEvent]) -> None:
        """Append events to the reply's stream; an "end" event closes it."""

    @abstractmethod
    def follow(self, message_id: int, idle_timeout: float) -> AsyncIterator[ReplyEvent]:
        """Every event of the reply's stream from its first, then live ones up to "end".

        Yields {"type": "idle"} whenever nothing arrived for `idle_timeout` seconds, so the
        caller can check that the owner is still alive; the caller decides when to stop.
        """

    # Commands.

    @abstractmethod
    async def send(self, command: Command, to: str | None = None) -> None:
        """Deliver `command` to replica `to`, or to every replica (this one too)."""

    # Counters and values with expiry.

    @abstractmethod
    async def incr(self, key: str, ttl: float, by: int = 1) -> int:
        """Add `by` to the counter at `key` and return it; a new counter lives `ttl` seconds."""

    @abstractmethod
    async def get(self, key: str) -> str | None:
        """The value at `key`, or None."""

    @abstractmethod
    async def set(self, key: str, value: str, ttl: float) -> None:
        """Store `value` at `key` for `ttl` seconds."""

    @abstractmethod
    async def take(self, key: str) -> str | None:
        """The value at `key`, removed in the same step: of several takers, one gets it."""

    @abstractmethod
    async def delete(self, *keys: str) -> None:
        """Remove the keys."""

    @abstractmethod
    async def ttl(self, key: str) -> float:
        """Seconds until `key` expires; 0 when it does not exist."""
