"""This process's part in a set-up of replicas: the commands it answers, and its duties.

Duties that run in the background:
- keep running replies safe: their text so far is written to the database every
  WXGPT_REPLY_SAVE_INTERVAL seconds (off the token path) and their leases renewed, so a
  crash loses at most that much of what was streamed;
- recover replies lost by a crashed replica: a reply whose lease lapsed is stored as
  `interrupted` with its saved text and refunded, by whichever replica sees it first;
- forget followers on other replicas that stopped announcing themselves.
"""

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from server.chat.live_replies import LiveReplies
from server.coordination.base import Command, Coordinator
from server.ops.presence import Presence
from storage import exchanges
from storage.exchanges import Lease

logger = logging.getLogger(__name__)


class Replica:
    """Answers coordination commands and runs the background duties of one replica."""

    def __init__(
        self,
        coordinator: Coordinator,
        live: LiveReplies,
        presence: Presence,
        *,
        save_interval: float,
    ) -> None:
        self.coordinator = coordinator
        self.id = coordinator.replica_id
        self._live = live
        self._presence = presence
        self._save_interval = save_interval
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Join the set-up and start the duties."""
        await self.coordinator.start(self.on_command)
        self._tasks = [
            asyncio.create_task(self._keep_replies_forever(), name="wxgpt-keep-replies"),
            asyncio.create_task(self._recover_forever(), name="wxgpt-recover-replies"),
        ]
        logger.info("replica %s started (coordination: %s)", self.id, self.coordinator.backend)

    async def close(self) -> None:
        """Stop the duties and leave the set-up (after running replies were stored)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.coordinator.close()

    async def on_command(self, command: Command) -> None:
        """Carry out a command another replica (or this one) sent."""
        op = command.get("op")
        if op in ("kick", "stop_socket", "close_user"):
            await self._presence.run_command(command)
        elif op in ("stop", "watch", "unwatch"):
            self._reply_command(command)
        else:
            logger.warning("unknown coordination command %r ignored", op)

    def _reply_command(self, command: dict[str, Any]) -> None:
        reply = self._live.get(int(command["message_id"]))
        if reply is None:
            return
        if command["op"] == "stop":
            reply.cancel("stop")
        elif command["op"] == "watch":
            reply.watch_remote(str(command["replica"]), float(command["seconds"]))
        else:
            reply.unwatch_remote(str(command["replica"]))

    async def keep_replies(self) -> None:
        """Save running replies' new text and renew the leases of all of them, once."""
        until = Lease.starting_now(self.id, self.coordinator.lease_seconds).until
        unchanged = []
        for reply in self._live.running():
            reply.forget_silent_watchers()
            if reply.saved_chars == len(reply.text):
                unchanged.append(reply.message_id)
                continue
            text = reply.text
            await exchanges.save_progress(reply.message_id, text, until)
            reply.saved_chars = len(text)
        await exchanges.renew_leases(unchanged, until)

    async def recover_lost_replies(self) -> list[int]:
        """Store replies whose replica's lease lapsed as interrupted, refunded; their ids."""
        recovered = await exchanges.recover_lost_replies(datetime.now(UTC))
        if recovered:
            logger.warning(
                "stored %d replies whose server stopped renewing them as interrupted "
                "(refunded): %s",
                len(recovered),
                ", ".join(map(str, recovered)),
            )
        return recovered

    async def _keep_replies_forever(self) -> None:
        # Leases are renewed at least three times per lease, however long the save interval.
        interval = min(self._save_interval, self.coordinator.lease_seconds / 3)
        await _forever(self.keep_replies, interval, "saving running replies")

    async def _recover_forever(self) -> None:
        await _forever(self.recover_lost_replies, self.coordinator.lease_seconds / 2, "recovery")


async def _forever(duty: Any, interval: float, what: str) -> None:
    """Run `duty` every `interval` seconds; a failure (the database away) is logged and the
    duty tried again, never left to end the task."""
    while True:
        try:
            await duty()
        except Exception:
            logger.exception("%s failed; trying again in %.1f s", what, interval)
        await asyncio.sleep(interval)
