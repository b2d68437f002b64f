"""A bounded number of generation slots with a first-come waiting line in front of them."""

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType

from generation.errors import QueueFull

PositionCallback = Callable[[int], Awaitable[None]]


class Ticket:
    """One reply's place: first in the waiting line, then in a slot, until released."""

    def __init__(self, queue: "GenerationQueue") -> None:
        self._queue = queue
        self._changed = asyncio.Event()
        self.holds_slot = False
        self.released = False

    async def wait(self, on_position: PositionCallback) -> None:
        """Wait for a slot, reporting the 1-based line position each time it changes."""
        last_reported: int | None = None
        while not self.holds_slot:
            # Clear before looking, so a release between the look and the wait is not missed.
            self._changed.clear()
            position = self._queue.position(self)
            if position != last_reported:
                last_reported = position
                await on_position(position)
                continue
            await self._changed.wait()

    def release(self) -> None:
        """Give the slot (or the place in line) back; safe to call twice."""
        if not self.released:
            self.released = True
            self._queue.leave(self)

    async def __aenter__(self) -> "Ticket":
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def _wake(self) -> None:
        self._changed.set()


class GenerationQueue:
    """`slots` replies generate at once; `max_waiting` more may wait; the rest are refused."""

    def __init__(self, slots: int, max_waiting: int) -> None:
        if slots < 1:
            raise ValueError("at least one generation slot is needed")
        self.slots = slots
        self.max_waiting = max_waiting
        self.running = 0
        self._waiting: deque[Ticket] = deque()

    @property
    def waiting(self) -> int:
        """How many replies wait for a slot."""
        return len(self._waiting)

    def reserve(self) -> Ticket:
        """Take a slot now or a place in line; raises QueueFull when the line is full."""
        ticket = Ticket(self)
        if self.running < self.slots and not self._waiting:
            self.running += 1
            ticket.holds_slot = True
        elif len(self._waiting) >= self.max_waiting:
            raise QueueFull(self.max_waiting)
        else:
            self._waiting.append(ticket)
        return ticket

    def position(self, ticket: Ticket) -> int:
        """1-based place of a waiting ticket."""
        return self._waiting.index(ticket) + 1

    def leave(self, ticket: Ticket) -> None:
        """Free the ticket's slot or place and move the line along."""
        if ticket.holds_slot:
            self.running -= 1
        else:
            self._waiting.remove(ticket)
        promoted = []
        while self._waiting and self.running < self.slots:
            head = self._waiting.popleft()
            head.holds_slot = True
            self.running += 1
            promoted.append(head)
        # Everyone still waiting moved up a place; the promoted ones may start.
        for ticket_to_wake in (*promoted, *self._waiting):
            ticket_to_wake._wake()
