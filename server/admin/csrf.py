"""CSRF tokens for cookie-authenticated admin changes.

The session cookie goes with every request a browser makes to this host, from any page of the
same site; the token does not: it is derived from the session with the server's key, handed to
the console in JSON a cross-site page cannot read, and sent back in a header such a page cannot
set without a CORS preflight, which wxgpt never grants."""

import base64
import hashlib
import hmac

HEADER = "X-CSRF-Token"


def csrf_token(secret_key: str, session_token: str) -> str:
    """The token that goes with this admin session."""
    digest = hmac.new(
        secret_key.encode(), b"wxgpt-admin-csrf:" + session_token.encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def csrf_matches(secret_key: str, session_token: str, presented: str | None) -> bool:
    """Whether `presented` is this session's token (compared in constant time)."""
    if not presented:
        return False
    expected = csrf_token(secret_key, session_token)
    return hmac.compare_digest(presented.encode(), expected.encode())
