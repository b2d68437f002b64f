"""Short-lived single-use tickets for browser WebSockets.

A browser cannot set an Authorization header on a WebSocket, and a token in the URL ends up in
access logs. So a page trades its credential (with a POST, which cross-site pages cannot make
on its behalf) for a ticket that opens one socket, once, within TICKET_TTL_S seconds. Tickets
live in the coordinator, so a ticket bought from one replica opens a socket on any other."""

import json
import secrets
from dataclasses import asdict, dataclass
from typing import Literal

from server.coordination.base import Coordinator

TICKET_TTL_S = 30.0

SocketKind = Literal["chat", "ops"]


@dataclass(frozen=True)
class Grant:
    """What a ticket opens: `chat` as a user (subject = the user id) or `ops` with an admin
    session (subject = the session token); `expires_at` is when the credential it was bought
    with expires (seconds since the epoch), and the socket with it."""

    socket: SocketKind
    subject: str
    expires_at: float


class TicketBook:
    """Tickets issued and not yet used; each is gone once used or TICKET_TTL_S after issue."""

    def __init__(self, coordinator: Coordinator, ttl_s: float = TICKET_TTL_S) -> None:
        self._coordinator = coordinator
        self.ttl_s = ttl_s

    async def issue(self, grant: Grant) -> str:
        """A new ticket for `grant`."""
        ticket = secrets.token_urlsafe(24)
        await self._coordinator.set(_key(ticket), json.dumps(asdict(grant)), self.ttl_s)
        return ticket

    async def redeem(self, ticket: str, socket: SocketKind) -> Grant | None:
        """The grant of a live ticket for this kind of socket, used up; None otherwise."""
        stored = await self._coordinator.take(_key(ticket))
        if stored is None:
            return None
        grant = Grant(**json.loads(stored))
        return grant if grant.socket == socket else None


def _key(ticket: str) -> str:
    return f"ticket:{ticket}"
