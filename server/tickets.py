"""Short-lived single-use tickets for browser WebSockets.

A browser cannot set an Authorization header on a WebSocket, and a token in the URL ends up in
access logs. So a page trades its credential (with a POST, which cross-site pages cannot make
on its behalf) for a ticket that opens one socket, once, within TICKET_TTL_S seconds."""

import secrets
import time
from dataclasses import dataclass
from typing import Literal

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
    """Tickets issued and not yet used, each forgotten once used or TICKET_TTL_S after issue."""

    def __init__(self, ttl_s: float = TICKET_TTL_S) -> None:
        self.ttl_s = ttl_s
        self._tickets: dict[str, tuple[float, Grant]] = {}

    def issue(self, grant: Grant) -> str:
        """A new ticket for `grant`."""
        now = time.monotonic()
        # Tickets expire in the order they were issued: forget the expired ones at the front.
        while self._tickets:
            oldest = next(iter(self._tickets))
            if self._tickets[oldest][0] > now:
                break
            del self._tickets[oldest]
        ticket = secrets.token_urlsafe(24)
        self._tickets[ticket] = (now + self.ttl_s, grant)
        return ticket

    def redeem(self, ticket: str, socket: SocketKind) -> Grant | None:
        """The grant of a live ticket for this kind of socket, used up; None otherwise."""
        entry = self._tickets.pop(ticket, None)
        if entry is None or entry[0] <= time.monotonic() or entry[1].socket != socket:
            return None
        return entry[1]
