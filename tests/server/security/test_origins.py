"""Cross-site requests: a page of another origin (here another loopback port of the same host,
which SameSite=Strict does not tell apart) cannot change anything with the admin's cookie, nor
read /ws/ops; the console's own origin, configured origins, WeChat and non-browser clients
keep working. Browsers' own behaviour is in tests/browser/test_cross_site.py."""

import httpx
import pytest
from websockets.asyncio.client import connect

from server.admin.auth import COOKIE
from tests.live_server import LiveServer, closed_with, error_of, recv
from tests.server.conftest import ServerFactory

EVIL = "http://127.0.0.1:1"
GRANT = {"action": "grant", "amount": 7, "reason": "cross-site"}
# What <form enctype="text/plain"> sends for <input name='{"action":…,"p":"' value='"}'>.
FORM_BODY = '{"action": "grant", "amount": 7, "reason": "cross-site", "p": "="}'


def _admin_cookie(server: LiveServer) -> tuple[str, str]:
    """The session cookie of a logged-in admin, and the CSRF token that goes with it."""
    server.call(_create_admin())
    response = httpx.post(
        server.url + "/api/admin/login", json={"username": "root", "password": "password-root"}
    )
    return response.cookies[COOKIE], response.json()["csrf_token"]


async def _create_admin() -> None:
    from storage import admins
    from storage.models import AdminRole

    await admins.create_admin("root", "password-root", AdminRole.ADMIN)


def _quota(server: LiveServer, token: str) -> int:
    quota: int = server.get("/api/me", token).json()["quota"]
    return quota


def _post_with_cookie(
    server: LiveServer, path: str, cookie: str, content: str, headers: dict[str, str]
) -> httpx.Response:
    return httpx.post(
        server.url + path, content=content, headers={"Cookie": f"{COOKIE}={cookie}", **headers}
    )


@pytest.mark.parametrize(
    "headers",
    [
        # fetch(…, {mode: "no-cors", credentials: "include", headers: {"Content-Type": …}})
        {"Origin": EVIL, "Content-Type": "text/plain;charset=UTF-8"},
        # <form method="post" enctype="text/plain"> from the other port
        {"Origin": EVIL, "Content-Type": "text/plain"},
        # the same from a browser that would let a page send JSON without a preflight
        {"Origin": EVIL, "Content-Type": "application/json"},
        # the console's own origin, but no CSRF token
        {"Content-Type": "application/json"},
    ],
)
def test_cookie_writes_from_other_origins_change_nothing(
    server: LiveServer, headers: dict[str, str]
) -> None:
    cookie, _ = _admin_cookie(server)
    token, user_id = server.login_user("victim")
    before = _quota(server, token)
    response = _post_with_cookie(
        server, f"/api/admin/users/{user_id}/quota", cookie, FORM_BODY, headers
    )
    assert response.status_code in (403, 415), response.text
    assert _quota(server, token) == before


def test_cookie_writes_with_the_csrf_token_from_the_own_origin_work(server: LiveServer) -> None:
    cookie, csrf = _admin_cookie(server)
    token, user_id = server.login_user("granted")
    before = _quota(server, token)
    response = _post_with_cookie(
        server,
        f"/api/admin/users/{user_id}/quota",
        cookie,
        FORM_BODY,
        {"Origin": server.url, "Content-Type": "application/json", "X-CSRF-Token": csrf},
    )
    assert response.status_code == 200, response.text
    assert _quota(server, token) == before + 7


def test_a_wrong_csrf_token_is_403_naming_the_header(server: LiveServer) -> None:
    cookie, csrf = _admin_cookie(server)
    response = _post_with_cookie(
        server,
        "/api/admin/logout",
        cookie,
        "",
        {"X-CSRF-Token": csrf[:-2] + "xx"},
    )
    status, code, message = error_of(response)
    assert (status, code) == (403, "csrf_failed") and "X-CSRF-Token" in message
    assert httpx.get(server.url + "/api/admin/me", cookies={COOKIE: cookie}).status_code == 200


def test_bearer_writes_need_no_csrf_token(server: LiveServer) -> None:
    admin = server.admin_login()
    _, user_id = server.login_user("bearer")
    response = httpx.post(
        f"{server.url}/api/admin/users/{user_id}/quota",
        json=GRANT,
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert response.status_code == 200


def test_state_changing_requests_from_other_origins_are_403(server: LiveServer) -> None:
    response = httpx.post(
        server.url + "/api/auth/login", json={"wid": "evil"}, headers={"Origin": EVIL}
    )
    status, code, message = error_of(response)
    assert (status, code) == (403, "forbidden") and EVIL in message


@pytest.mark.parametrize(
    "origin", [None, "https://servicewechat.com", "self", "http://console.example"]
)
def test_allowed_origins_may_log_in(start_server: ServerFactory, origin: str | None) -> None:
    server = start_server(allowed_origins="http://console.example, http://other.example")
    headers = {} if origin is None else {"Origin": server.url if origin == "self" else origin}
    response = httpx.post(server.url + "/api/auth/login", json={"wid": "ok"}, headers=headers)
    assert response.status_code == 200, response.text


async def test_ops_socket_refuses_other_origins_even_with_the_cookie(server: LiveServer) -> None:
    cookie, _ = _admin_cookie(server)
    url = f"ws://127.0.0.1:{server.port}/ws/ops"
    headers = {"Cookie": f"{COOKIE}={cookie}"}
    async with connect(url, additional_headers={**headers, "Origin": EVIL}) as ws:
        code, reason = await closed_with(ws)
    assert code == 4403 and EVIL in reason
    async with connect(url, additional_headers={**headers, "Origin": server.url}) as ws:
        assert (await recv(ws))["type"] == "snapshot"


@pytest.mark.parametrize(
    ("origin", "served"),
    [
        (None, True),
        ("https://servicewechat.com", True),
        ("self", True),
        (EVIL, False),
        ("null", False),
    ],
)
async def test_chat_socket_checks_browser_origins(
    server: LiveServer, origin: str | None, served: bool
) -> None:
    headers = {"Authorization": f"Bearer {server.login()}"}
    if origin is not None:
        headers["Origin"] = server.url if origin == "self" else origin
    async with connect(server.ws_url, additional_headers=headers) as ws:
        if served:
            assert (await recv(ws))["type"] == "ready"
        else:
            assert (await closed_with(ws))[0] == 4403
