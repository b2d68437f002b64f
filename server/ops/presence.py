"""Who is connected to /ws/chat right now, and what each socket's reply is doing.

Each replica keeps its own sockets here and publishes their rows to the coordinator, so
the ops panel of any replica lists every replica's sockets; acting on a socket of another
replica (kick, stop, close a banned user's sockets) is a command sent to that replica.
"""

import asyncio
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Literal

from generation.streaming import GenerationResult
from server.chat.live_replies import Watcher
from server.coordination.base import Coordinator
from server.ops.metrics import Metrics
from storage.models import User

logger = logging.getLogger(__name__)

SocketState = Literal["idle", "queued", "generating"]
CloseSocket = Callable[[int, str], Awaitable[None]]
Row = dict[str, Any]

THROUGHPUT_WINDOW_S = 60.0


class SocketPresence:
    """One open chat socket: who, from where, bytes both ways, and its reply's progress."""

    def __init__(self, user: User, remote: str) -> None:
        self.id = secrets.token_urlsafe(6)
        self.user: dict[str, Any] = {
            "id": user.id,
            "openid": user.openid,
            "nickname": user.nickname,
        }
        self.remote = remote
        self.connected_at = _now()
        self.last_activity = self.connected_at
        self.state: SocketState = "idle"
        self.queue_position: int | None = None
        self.bytes_in = 0
        self.bytes_out = 0
        self.watcher: Watcher | None = None
        # Bumped on every change the row shows, so an unchanged row is skipped unbuilt.
        self.version = 0
        self._last_tokens = 0
        self._generating_since: float | None = None
        self._presence: Presence | None = None
        self._close: CloseSocket | None = None

    @property
    def user_id(self) -> int:
        """The id of the user on this socket."""
        user_id: int = self.user["id"]
        return user_id

    @property
    def tokens(self) -> int:
        """Tokens of the reply in progress, or of the last one once it ended."""
        reply = self.watcher.reply if self.watcher is not None else None
        return reply.steps if reply is not None else self._last_tokens

    @property
    def generating(self) -> bool:
        """Whether tokens are being produced (the row then changes by itself)."""
        return self.state == "generating"

    def received(self, size: int) -> None:
        """The client sent a frame of `size` bytes."""
        self.version += 1
        self.bytes_in += size
        self.last_activity = _now()

    def sent(self, frame: dict[str, Any], size: int) -> None:
        """A frame of `size` bytes went to the client; its type moves the state along."""
        self.version += 1
        self.bytes_out += size
        self.last_activity = _now()
        kind = frame["type"]
        if kind == "queued" and self.watcher is not None:
            self.state = "queued"
            self.queue_position = frame["position"]
        elif kind == "start" and self.watcher is not None:
            self.state = "generating"
            self.queue_position = None
            self._generating_since = time.monotonic()
        elif kind == "error" and self._presence is not None:
            self._presence.metrics.count_error(frame["code"])

    def reply_started(self, watcher: Watcher) -> None:
        """A chat or resume frame was accepted; until `start` the reply counts as queued."""
        self.version += 1
        self.watcher = watcher
        self.state = "queued"
        self.queue_position = None
        self._generating_since = None

    def reply_ended(self) -> None:
        """The socket stopped streaming its reply (ended, refused, or left); idle again."""
        if self.watcher is None:
            return
        self.version += 1
        self._last_tokens = self.tokens
        self.watcher = None
        self.state = "idle"
        self.queue_position = None
        self._generating_since = None

    def stop(self) -> None:
        """Stop the running reply, if any, as if the user sent `stop`."""
        if self.watcher is not None:
            self.watcher.stop()

    async def close(self, code: int, reason: str) -> None:
        """Close the socket; its reply then goes on as for any dropped socket."""
        if self._close is not None:
            await self._close(code, reason)

    def view(self) -> Row:
        """The row the ops panel shows."""
        return {
            "id": self.id,
            "replica": self._presence.replica_id if self._presence else None,
            "user": self.user,
            "remote": self.remote,
            "connected_at": self.connected_at.isoformat(),
            "state": self.state,
            "queue_position": self.queue_position,
            "tokens": self.tokens,
            "tokens_per_s": self._tokens_per_s(),
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "last_activity": self.last_activity.isoformat(),
        }

    def _tokens_per_s(self) -> float | None:
        if self._generating_since is None or self.watcher is None:
            return None
        elapsed = time.monotonic() - self._generating_since
        return round(self.tokens / elapsed, 1) if elapsed > 0 else None


class Presence:
    """Every open chat socket by id, and the token throughput of the last minute."""

    def __init__(
        self, metrics: Metrics, running_tokens: Callable[[], int], coordinator: Coordinator
    ) -> None:
        self.metrics = metrics
        self.replica_id = coordinator.replica_id
        self._coordinator = coordinator
        self._running_tokens = running_tokens
        self._sockets: dict[str, SocketPresence] = {}
        self._finished_tokens = 0
        self._samples: deque[tuple[float, int]] = deque()

    def __len__(self) -> int:
        return len(self._sockets)

    def add(self, socket: SocketPresence, close: CloseSocket) -> None:
        """Register an open socket and how to close it."""
        socket._presence = self
        socket._close = close
        self._sockets[socket.id] = socket

    def remove(self, socket: SocketPresence) -> None:
        """Forget a socket that has closed."""
        self._sockets.pop(socket.id, None)

    def sockets(self) -> list[SocketPresence]:
        """This replica's open sockets, oldest connection first."""
        return list(self._sockets.values())

    async def other_rows(self) -> list[Row]:
        """The rows of the other replicas' sockets."""
        return await self._coordinator.other_rows()

    async def snapshot(self) -> list[Row]:
        """Every replica's open sockets: this one's first, oldest connection first."""
        return [socket.view() for socket in self._sockets.values()] + await self.other_rows()

    async def kick(self, socket_id: str, code: int, reason: str) -> Row | None:
        """Close one socket, on whichever replica; its row, or None if no such socket is open."""
        return await self._act(socket_id, {"op": "kick", "code": code, "reason": reason})

    async def stop(self, socket_id: str) -> Row | None:
        """Stop the socket's running reply, if any; its row, or None if no such socket is open."""
        return await self._act(socket_id, {"op": "stop_socket"})

    async def _act(self, socket_id: str, command: dict[str, Any]) -> Row | None:
        local = self._sockets.get(socket_id)
        if local is not None:
            await self.run_command({**command, "socket_id": socket_id})
            return local.view()
        row = next((r for r in await self.other_rows() if r["id"] == socket_id), None)
        if row is not None:
            await self._coordinator.send({**command, "socket_id": socket_id}, to=row["replica"])
        return row

    async def close_user(self, user_id: int, code: int = 4403, reason: str = "banned") -> int:
        """Close all of a user's chat sockets on every replica; returns how many there were."""
        remote = sum(1 for row in await self.other_rows() if row["user"]["id"] == user_id)
        command = {"op": "close_user", "user_id": user_id, "code": code, "reason": reason}
        closed = await self.run_command(command)
        await self._coordinator.send({**command, "from": self.replica_id})
        return closed + remote

    async def run_command(self, command: dict[str, Any]) -> int:
        """Act on this replica's sockets: kick, stop_socket or close_user; how many it touched.

        A close_user this replica sent to everyone comes back here too, and is skipped: its
        sockets were closed before it was sent.
        """
        op = command["op"]
        if op == "close_user":
            if command.get("from") == self.replica_id:
                return 0
            sockets = [s for s in self._sockets.values() if s.user_id == command["user_id"]]
        else:
            found = self._sockets.get(command["socket_id"])
            sockets = [found] if found is not None else []
        if op == "stop_socket":
            for socket in sockets:
                socket.stop()
        else:
            await asyncio.gather(
                *(socket.close(command["code"], command["reason"]) for socket in sockets)
            )
        if op == "close_user" and sockets:
            logger.info(
                "closed %d chat sockets of user %d: %s",
                len(sockets),
                command["user_id"],
                command["reason"],
            )
        return len(sockets)

    def reply_finished(self, result: GenerationResult) -> None:
        """Fold a generated reply into the token total and the metrics."""
        self._finished_tokens += result.completion_tokens
        self.metrics.observe_reply(result)

    def tokens_total(self) -> int:
        """Tokens generated since start, counting replies still running."""
        return self._finished_tokens + self._running_tokens()

    def sample(self) -> None:
        """Remember the token total now; samples older than the window are dropped."""
        now = time.monotonic()
        self._samples.append((now, self.tokens_total()))
        while len(self._samples) > 1 and self._samples[1][0] <= now - THROUGHPUT_WINDOW_S:
            self._samples.popleft()

    def tokens_per_s(self) -> float:
        """Tokens per second over the last minute (or since start, if that is shorter)."""
        now = time.monotonic()
        if not self._samples:
            return 0.0
        since, total = self._samples[0]
        elapsed = now - since
        # A reply just stored may be counted twice for a moment; never report a negative rate.
        gained = max(0, self.tokens_total() - total)
        return round(gained / elapsed, 1) if elapsed > 0 else 0.0

    async def sample_forever(self, interval: float = 1.0) -> None:
        """Every `interval` seconds: sample the token total, for tokens_per_s(), and publish
        the rows that changed to the other replicas."""
        published = RowDiff()
        epoch = self._coordinator.epoch
        while True:
            self.sample()
            if self._coordinator.shared:
                if self._coordinator.epoch != epoch:
                    # The shared store lost its state (Redis restarted): publish every row.
                    published, epoch = RowDiff(), self._coordinator.epoch
                upsert, remove = published.diff(self._sockets.values(), [])
                if upsert or remove:
                    await self._coordinator.put_rows(upsert, remove)
            await asyncio.sleep(interval)


class RowDiff:
    """What changed in the socket table since the last look (for one ops panel, or for what
    this replica published)."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}
        self._seen_remote: dict[str, Row] = {}

    def diff(
        self, sockets: Iterable[SocketPresence], remote: list[Row]
    ) -> tuple[list[Row], list[str]]:
        """Rows new or changed since the previous call, and ids gone since then: this
        replica's sockets, and rows of other replicas' sockets.

        Only changed local rows are built: 1,000 idle sockets cost 1,000 integer comparisons.
        """
        current = {socket.id: socket for socket in sockets}
        upsert = [
            socket.view()
            for socket_id, socket in current.items()
            if socket.generating or self._seen.get(socket_id) != socket.version
        ]
        current_remote = {row["id"]: row for row in remote}
        upsert += [
            row
            for socket_id, row in current_remote.items()
            if self._seen_remote.get(socket_id) != row
        ]
        remove = [socket_id for socket_id in self._seen if socket_id not in current]
        remove += [socket_id for socket_id in self._seen_remote if socket_id not in current_remote]
        self._seen = {socket_id: socket.version for socket_id, socket in current.items()}
        self._seen_remote = current_remote
        return upsert, remove


def _now() -> datetime:
    return datetime.now(UTC)
