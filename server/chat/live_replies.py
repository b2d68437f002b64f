"""Replies being generated now, apart from the sockets that asked for them.

A reply outlives its socket: it keeps the text generated so far, so a socket that comes
back (resume, or the same client_msg_id sent again) first catches up and then streams
live. With nobody watching for the grace period, the reply is cancelled.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Literal

from generation.stopping import CancelToken
from server.chat import protocol
from server.chat.protocol import FrameError

logger = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], Awaitable[None]]
CancelReason = Literal["stop", "disconnect", "shutdown"]


class Watcher:
    """One socket's hold on the reply it streams: where the frames go, and its `stop`."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.reply: LiveReply | None = None
        self.stop_requested = False
        self.left = False
        self._released = asyncio.Event()

    def stop(self) -> None:
        """Stop the watched reply; one still being set up is stopped as soon as it is live."""
        self.stop_requested = True
        if self.reply is not None:
            self.reply.cancel("stop")

    def leave(self) -> None:
        """The socket closed: the reply goes on without it (for the grace period if alone)."""
        self.left = True
        self._released.set()
        if self.reply is not None:
            self.reply.detach(self)

    async def released(self) -> None:
        """Return once the reply's last frame was sent here, or the socket left."""
        await self._released.wait()

    def release(self) -> None:
        """The reply sent its last frame here."""
        self._released.set()


class LiveReply:
    """One reply being generated: its text so far, its watchers, and how it is cancelled."""

    def __init__(
        self, user_id: int, conversation_id: int, message_id: int, *, grace_seconds: float
    ) -> None:
        self.user_id = user_id
        self.conversation_id = conversation_id
        self.message_id = message_id
        self.token = CancelToken()
        self.reason: CancelReason | None = None
        self.text = ""
        self.started = False
        self.position: int | None = None
        self.final: dict[str, Any] | None = None
        self._grace_seconds = grace_seconds
        self._grace_timer: asyncio.TimerHandle | None = None
        self._watchers: set[Watcher] = set()
        self._cancelled = asyncio.Event()

    def cancel(self, reason: CancelReason) -> None:
        """Stop the reply (the model stops within one decoding step)."""
        if self.reason is None:
            self.reason = reason
        self.token.cancel()
        self._cancelled.set()

    async def wait_cancelled(self) -> None:
        """Return once cancel() was called."""
        await self._cancelled.wait()

    async def queued(self, position: int) -> None:
        """Tell the watchers their place in line."""
        self.position = position
        await self._broadcast(protocol.queued(position))

    async def begin(self) -> None:
        """The model took the reply: watchers get `start`."""
        self.started = True
        await self._broadcast(protocol.start(self.conversation_id, self.message_id))

    async def append(self, text: str) -> None:
        """Keep the next piece and stream it to the watchers."""
        self.text += text
        await self._broadcast(protocol.delta(text))

    async def finish(self, frame: dict[str, Any]) -> None:
        """The reply is stored: send its last frame (`done` or `error`) and let watchers go."""
        self.final = frame
        if self._grace_timer is not None:
            self._grace_timer.cancel()
        watchers = list(self._watchers)
        self._watchers.clear()
        for watcher in watchers:
            await watcher.send(frame)
            watcher.release()

    async def attach(self, watcher: Watcher, offset: int) -> None:
        """Send `watcher` the text from character `offset` on, then stream it the rest live."""
        if offset > len(self.text):
            raise FrameError(
                "bad_request",
                f"offset {offset} is beyond the {len(self.text)} characters of reply "
                f"{self.message_id} generated so far",
            )
        watcher.reply = self
        if watcher.stop_requested:
            self.cancel("stop")
        if self.started:
            await watcher.send(protocol.start(self.conversation_id, self.message_id))
            sent = offset
            # Pieces generated while catching up are sent here too; once caught up, the
            # watcher joins without an await in between, so nothing is missed or doubled.
            while sent < len(self.text):
                piece = self.text[sent:]
                sent += len(piece)
                await watcher.send(protocol.delta(piece))
        if self.final is not None:
            await watcher.send(self.final)
            watcher.release()
            return
        self._watchers.add(watcher)
        if self._grace_timer is not None:
            self._grace_timer.cancel()
            self._grace_timer = None
        if watcher.left:
            self.detach(watcher)
        elif not self.started and self.position is not None:
            # Sent after joining, so a `start` broadcast meanwhile comes after it.
            await watcher.send(protocol.queued(self.position))

    def detach(self, watcher: Watcher) -> None:
        """Forget `watcher`; with nobody left, cancel the reply after the grace period."""
        self._watchers.discard(watcher)
        if not self._watchers and self.final is None and self._grace_timer is None:
            self._grace_timer = asyncio.get_running_loop().call_later(
                self._grace_seconds, self._expire
            )

    def _expire(self) -> None:
        self._grace_timer = None
        if not self._watchers and self.final is None:
            logger.info(
                "reply %d: nobody came back within %.1f s; cancelling it",
                self.message_id,
                self._grace_seconds,
            )
            self.cancel("disconnect")

    async def _broadcast(self, frame: dict[str, Any]) -> None:
        for watcher in list(self._watchers):
            await watcher.send(frame)


class LiveReplies:
    """The replies being generated now, by message id; each runs in its own task."""

    def __init__(self, grace_seconds: float) -> None:
        self.grace_seconds = grace_seconds
        self._replies: dict[int, LiveReply] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def new(self, user_id: int, conversation_id: int, message_id: int) -> LiveReply:
        """A reply about to be generated; start() makes it live."""
        return LiveReply(user_id, conversation_id, message_id, grace_seconds=self.grace_seconds)

    def start(self, reply: LiveReply, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` (which generates, stores and finishes `reply`) detached from any socket.

        The reply stays findable until `work` returns, that is after it is stored.
        """
        self._replies[reply.message_id] = reply
        task = asyncio.create_task(work, name=f"wxgpt-reply-{reply.message_id}")
        self._tasks.add(task)

        def forget(done: asyncio.Task[None]) -> None:
            self._tasks.discard(done)
            self._replies.pop(reply.message_id, None)

        task.add_done_callback(forget)

    def get(self, message_id: int) -> LiveReply | None:
        """The reply with this id if it is being generated now."""
        return self._replies.get(message_id)

    def tokens_so_far(self) -> int:
        """Tokens generated so far by the replies running now (for the ops panel)."""
        return sum(reply.token.steps for reply in self._replies.values())

    async def shutdown(self) -> None:
        """Cancel every running reply and wait until each is stored."""
        for reply in self._replies.values():
            reply.cancel("shutdown")
        if self._tasks:
            logger.info("shutting down: storing %d running replies", len(self._tasks))
            await asyncio.gather(*self._tasks, return_exceptions=True)
