"""Replies being generated now, apart from the sockets that asked for them.

A reply outlives its socket: it keeps the text generated so far, so a socket that comes
back (resume, or the same client_msg_id sent again) first catches up and then streams
live. With nobody watching for the grace period, the reply is cancelled. Where replicas
share state, every event of the reply is also published to its shared stream, so a socket
on another replica can follow it (server/chat/remote_replies.py); such a follower keeps the
reply watched by announcing itself.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Literal, Protocol

from generation.stopping import CancelToken
from server.chat import protocol
from server.chat.protocol import FrameError
from server.coordination.base import ReplyEvent

logger = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], Awaitable[None]]
Publish = Callable[[int, list[ReplyEvent]], Awaitable[None]]
CancelReason = Literal["stop", "disconnect", "shutdown", "blocked"]
# Deltas are gathered this long before they go to the shared stream, so a fast model costs
# a few stream writes a second, not one per token.
PUBLISH_DELAY_S = 0.05


class WatchedReply(Protocol):
    """What a socket's Watcher needs of the reply it streams, here or on another replica."""

    @property
    def steps(self) -> int:
        """Decoding steps so far."""
        ...

    def cancel(self, reason: CancelReason) -> None:
        """Stop the reply."""
        ...

    def detach(self, watcher: "Watcher") -> None:
        """The watcher's socket has gone."""
        ...


class Watcher:
    """One socket's hold on the reply it streams: where the frames go, and its `stop`."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.reply: WatchedReply | None = None
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

    @property
    def is_released(self) -> bool:
        """Whether the reply's last frame was sent here (or the socket left)."""
        return self._released.is_set()


class LiveReply:
    """One reply being generated: its text so far, its watchers, and how it is cancelled."""

    def __init__(
        self,
        user_id: int,
        conversation_id: int,
        message_id: int,
        *,
        grace_seconds: float,
        publish: Publish | None = None,
    ) -> None:
        self.user_id = user_id
        self.conversation_id = conversation_id
        self.message_id = message_id
        self.token = CancelToken()
        self.reason: CancelReason | None = None
        self.text = ""
        # How much of `text` the database has (saved by the replica's keeper).
        self.saved_chars = 0
        self.started = False
        self.position: int | None = None
        self.final: dict[str, Any] | None = None
        self._grace_seconds = grace_seconds
        self._grace_timer: asyncio.TimerHandle | None = None
        self._watchers: set[Watcher] = set()
        # Followers on other replicas: replica id → when its last announcement runs out.
        self._remote_watchers: dict[str, float] = {}
        self._cancelled = asyncio.Event()
        self._publish = publish
        self._outbox: list[ReplyEvent] = []
        self._flushing: asyncio.Task[None] | None = None

    @property
    def steps(self) -> int:
        """Decoding steps so far."""
        return self.token.steps

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
        self._emit({"type": "queued", "position": position})
        await self._broadcast(protocol.queued(position))

    async def begin(self) -> None:
        """The model took the reply: watchers get `start`."""
        self.started = True
        self._emit(
            {
                "type": "start",
                "conversation_id": self.conversation_id,
                "message_id": self.message_id,
            }
        )
        await self._broadcast(protocol.start(self.conversation_id, self.message_id))

    async def append(self, text: str) -> None:
        """Keep the next piece and stream it to the watchers."""
        self.text += text
        self._emit({"type": "delta", "text": text, "steps": self.steps})
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
        self._emit({"type": "end", "frame": frame})
        await self._flush()

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
        self._stop_grace_timer()
        if watcher.left:
            self.detach(watcher)
        elif not self.started and self.position is not None:
            # Sent after joining, so a `start` broadcast meanwhile comes after it.
            await watcher.send(protocol.queued(self.position))

    def detach(self, watcher: Watcher) -> None:
        """Forget `watcher`; with nobody left, cancel the reply after the grace period."""
        self._watchers.discard(watcher)
        self._start_grace_timer_if_alone()

    def watch_remote(self, replica_id: str, for_seconds: float) -> None:
        """A socket on another replica follows this reply for at least `for_seconds` more."""
        self._remote_watchers[replica_id] = time.monotonic() + for_seconds
        self._stop_grace_timer()

    def unwatch_remote(self, replica_id: str) -> None:
        """The follower on that replica has gone."""
        self._remote_watchers.pop(replica_id, None)
        self._start_grace_timer_if_alone()

    def forget_silent_watchers(self) -> None:
        """Drop remote followers that stopped announcing themselves (their replica crashed)."""
        now = time.monotonic()
        silent = [replica for replica, until in self._remote_watchers.items() if until <= now]
        for replica in silent:
            self.unwatch_remote(replica)

    def _watched(self) -> bool:
        return bool(self._watchers or self._remote_watchers)

    def _stop_grace_timer(self) -> None:
        if self._grace_timer is not None:
            self._grace_timer.cancel()
            self._grace_timer = None

    def _start_grace_timer_if_alone(self) -> None:
        if not self._watched() and self.final is None and self._grace_timer is None:
            self._grace_timer = asyncio.get_running_loop().call_later(
                self._grace_seconds, self._expire
            )

    def _expire(self) -> None:
        self._grace_timer = None
        if not self._watched() and self.final is None:
            logger.info(
                "reply %d: nobody came back within %.1f s; cancelling it",
                self.message_id,
                self._grace_seconds,
            )
            self.cancel("disconnect")

    async def _broadcast(self, frame: dict[str, Any]) -> None:
        for watcher in list(self._watchers):
            await watcher.send(frame)

    def _emit(self, event: ReplyEvent) -> None:
        """Queue an event for the shared stream; deltas are merged and sent a moment later."""
        if self._publish is None:
            return
        last = self._outbox[-1] if self._outbox else None
        if event["type"] == "delta" and last is not None and last["type"] == "delta":
            last["text"] += event["text"]
            last["steps"] = event["steps"]
        else:
            self._outbox.append(event)
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        await asyncio.sleep(PUBLISH_DELAY_S)
        await self._send_outbox()

    async def _flush(self) -> None:
        """Publish everything queued, in order, before returning."""
        if self._flushing is not None:
            await self._flushing
        await self._send_outbox()

    async def _send_outbox(self) -> None:
        events, self._outbox = self._outbox, []
        if events and self._publish is not None:
            await self._publish(self.message_id, events)


class LiveReplies:
    """The replies being generated now, by message id; each runs in its own task."""

    def __init__(self, grace_seconds: float, publish: Publish | None = None) -> None:
        self.grace_seconds = grace_seconds
        self._publish = publish
        self._replies: dict[int, LiveReply] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def new(self, user_id: int, conversation_id: int, message_id: int) -> LiveReply:
        """A reply about to be generated; start() makes it live."""
        return LiveReply(
            user_id,
            conversation_id,
            message_id,
            grace_seconds=self.grace_seconds,
            publish=self._publish,
        )

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

    def running(self) -> list[LiveReply]:
        """Every reply being generated (or waiting for a slot) now."""
        return list(self._replies.values())

    def tokens_so_far(self) -> int:
        """Tokens generated so far by the replies running now (for the ops panel)."""
        return sum(reply.steps for reply in self._replies.values())

    async def shutdown(self) -> None:
        """Cancel every running reply and wait until each is stored."""
        for reply in self._replies.values():
            reply.cancel("shutdown")
        if self._tasks:
            logger.info("shutting down: storing %d running replies", len(self._tasks))
            await asyncio.gather(*self._tasks, return_exceptions=True)
