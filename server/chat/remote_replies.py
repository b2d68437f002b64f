"""Following a reply that another replica is generating, from its shared stream.

The follower reads the stream from its first event (so it can catch up from any offset),
then live; it tells the owner it is watching, so the reply is not cancelled for want of
watchers, and passes `stop` on. If the owner goes away mid-reply, the follower waits for a
survivor to store the reply as interrupted and sends what was stored.
"""

import asyncio
import logging
from typing import Any

from server.chat import protocol
from server.chat.live_replies import CancelReason, Watcher
from server.chat.protocol import FrameError
from server.coordination.base import Coordinator
from storage import exchanges
from storage.models import Message, MessageStatus

logger = logging.getLogger(__name__)


class RemoteReply:
    """A reply generated on replica `owner`, streamed to a watcher on this one."""

    def __init__(self, coordinator: Coordinator, message_id: int, owner: str) -> None:
        self._coordinator = coordinator
        self.message_id = message_id
        self.owner = owner
        self._steps = 0
        self._left = asyncio.Event()
        self._commands: set[asyncio.Task[None]] = set()

    @property
    def steps(self) -> int:
        """Decoding steps so far, as the owner last reported them."""
        return self._steps

    def cancel(self, reason: CancelReason) -> None:
        """Ask the owner to stop the reply (only `stop` is passed on; the owner's own grace
        period handles a follower that leaves)."""
        if reason == "stop":
            self._command({"op": "stop", "message_id": self.message_id})

    def detach(self, watcher: Watcher) -> None:
        """The follower's socket closed."""
        self._left.set()

    async def follow(self, watcher: Watcher, offset: int) -> str:
        """Stream the reply to `watcher` from character `offset`; returns the text seen.

        Returns once the reply's last frame was sent, the socket left, or the owner went
        away (the caller then replays what was stored).
        """
        watcher.reply = self
        if watcher.stop_requested:
            self.cancel("stop")
        announcing = asyncio.create_task(self._announce_forever())
        text = ""
        loop = asyncio.get_running_loop()
        dead_since: float | None = None
        try:
            async for event in self._coordinator.follow(
                self.message_id, idle_timeout=self._coordinator.lease_seconds / 2
            ):
                if self._left.is_set():
                    break
                kind = event["type"]
                if kind == "idle":
                    if await self._coordinator.replica_alive(self.owner):
                        dead_since = None
                    elif dead_since is None:
                        dead_since = loop.time()
                    elif loop.time() - dead_since >= self._coordinator.lease_seconds:
                        # Gone for a whole lease, not a missed heartbeat or a Redis blip.
                        break
                elif kind == "queued" and not text:
                    await watcher.send(protocol.queued(event["position"]))
                elif kind == "start":
                    await watcher.send(protocol.start(event["conversation_id"], self.message_id))
                elif kind == "delta":
                    shown = max(offset, len(text))
                    text += event["text"]
                    self._steps = event["steps"]
                    if len(text) > shown:
                        await watcher.send(protocol.delta(text[shown:]))
                elif kind == "end":
                    await watcher.send(event["frame"])
                    watcher.release()
                    break
        finally:
            announcing.cancel()
            self._command({"op": "unwatch", "message_id": self.message_id})
        return text

    async def _announce_forever(self) -> None:
        lease = self._coordinator.lease_seconds
        while True:
            self._command(
                {"op": "watch", "message_id": self.message_id, "seconds": lease},
            )
            await asyncio.sleep(lease / 3)

    def _command(self, command: dict[str, Any]) -> None:
        command["replica"] = self._coordinator.replica_id
        task = asyncio.create_task(self._coordinator.send(command, to=self.owner))
        self._commands.add(task)
        task.add_done_callback(self._commands.discard)


async def settled_reply(user_id: int, message_id: int, wait_seconds: float) -> Message:
    """The stored reply once it is no longer generating (a survivor recovers a reply whose
    replica vanished within a lease); raises FrameError busy if it takes longer."""
    deadline = asyncio.get_running_loop().time() + wait_seconds
    while True:
        reply = await exchanges.find_reply(user_id, message_id)
        if reply is None:
            raise FrameError("not_found", f"reply {message_id} not found")
        if reply.status != MessageStatus.GENERATING:
            return reply
        if asyncio.get_running_loop().time() > deadline:
            raise FrameError(
                "busy",
                f"the server writing reply {message_id} went away; resume it again in a moment",
            )
        await asyncio.sleep(0.5)
