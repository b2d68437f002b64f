"""The admin API on a real server: sessions, refusals, users and quotas, conversations,
settings and the audit log."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from storage.models import AdminSession, QuotaLedger
from tests.live_server import LiveServer, chat_frame, error_of, open_chat, recv, recv_until

# Every admin endpoint, with a body that would be accepted, and whether it changes anything.
ENDPOINTS: list[tuple[str, str, dict[str, Any] | None, bool]] = [
    ("GET", "/api/admin/me", None, False),
    ("GET", "/api/admin/stats", None, False),
    ("GET", "/api/admin/users", None, False),
    ("GET", "/api/admin/users/1", None, False),
    ("DELETE", "/api/admin/users/1", None, True),
    ("POST", "/api/admin/users/1/quota", {"action": "grant", "amount": 1, "reason": "r"}, True),
    ("POST", "/api/admin/users/1/ban", {"reason": "r"}, True),
    ("POST", "/api/admin/users/1/unban", None, True),
    ("GET", "/api/admin/users/1/ledger", None, False),
    ("GET", "/api/admin/conversations", None, False),
    ("GET", "/api/admin/conversations/1", None, False),
    ("DELETE", "/api/admin/conversations/1", None, True),
    ("GET", "/api/admin/settings", None, False),
    ("PUT", "/api/admin/settings", {"temperature": 0.5}, True),
    ("GET", "/api/admin/audit", None, False),
    ("POST", "/api/admin/ws-ticket", {"socket": "chat"}, True),
    ("GET", "/api/admin/moderation/cases", None, False),
    ("POST", "/api/admin/moderation/cases/1/action", {"action": "dismiss"}, True),
    ("GET", "/api/admin/moderation/words", None, False),
    ("PUT", "/api/admin/moderation/words", {"words": []}, True),
    ("POST", "/api/admin/logout", None, False),
]


def call(
    server: LiveServer, method: str, path: str, token: str | None, body: Any = None, **params: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.request(
        method, server.url + path, json=body, params=params, headers=headers, timeout=30
    )


@pytest.fixture
def admin(server: LiveServer) -> str:
    return server.admin_login()


def user_id_of(server: LiveServer, wid: str) -> int:
    response = httpx.post(server.url + "/api/auth/login", json={"wid": wid, "nickname": wid})
    user_id: int = response.json()["user"]["id"]
    return user_id


def test_login_sets_an_httponly_samesite_cookie_and_logout_ends_the_session(
    server: LiveServer,
) -> None:
    server.admin_login("alice")
    with httpx.Client(base_url=server.url) as browser:
        response = browser.post(
            "/api/admin/login", json={"username": "alice", "password": "password-alice"}
        )
        assert response.status_code == 200
        assert response.json()["admin"] == {"username": "alice", "role": "admin"}
        csrf = response.json()["csrf_token"]
        cookie = response.headers["set-cookie"].lower()
        assert "wxgpt_admin=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
        assert browser.get("/api/admin/me").json() == {
            "username": "alice",
            "role": "admin",
            "csrf_token": csrf,
        }
        logout = browser.post("/api/admin/logout", headers={"X-CSRF-Token": csrf})
        assert logout.status_code == 204
        browser.cookies.set("wxgpt_admin", response.json()["token"])
        assert error_of(browser.get("/api/admin/me"))[:2] == (401, "unauthorized")


def test_wrong_passwords_are_refused_then_rate_limited(server: LiveServer) -> None:
    server.admin_login("bob")
    login = server.url + "/api/admin/login"
    for _ in range(server.settings.admin_login_attempts):
        wrong = httpx.post(login, json={"username": "bob", "password": "not-it"})
        assert error_of(wrong)[:2] == (401, "bad_credentials")
    limited = httpx.post(login, json={"username": "bob", "password": "password-bob"})
    status, code, message = error_of(limited)
    assert (status, code) == (429, "rate_limited")
    assert int(limited.headers["retry-after"]) > 0
    assert "5 per 300 s" in message
    unknown = httpx.post(login, json={"username": "nobody", "password": "x"})
    assert error_of(unknown)[:2] == (429, "rate_limited"), "the address is limited as well"


@pytest.mark.parametrize(("method", "path", "body", "writes"), ENDPOINTS)
def test_every_endpoint_refuses_without_an_admin_session(
    server: LiveServer, method: str, path: str, body: dict[str, Any] | None, writes: bool
) -> None:
    user_token = server.login("someone")
    for token in (None, user_token, "made-up"):
        assert error_of(call(server, method, path, token, body))[:2] == (401, "unauthorized")


def test_an_expired_session_is_refused(server: LiveServer, admin: str) -> None:
    assert call(server, "GET", "/api/admin/me", admin).status_code == 200
    server.call(AdminSession.all().update(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    status, code, message = error_of(call(server, "GET", "/api/admin/stats", admin))
    assert (status, code) == (401, "unauthorized")
    assert "expired" in message


@pytest.mark.parametrize(
    ("method", "path", "body"), [(m, p, b) for m, p, b, writes in ENDPOINTS if writes]
)
def test_the_ops_role_cannot_change_anything(
    server: LiveServer, method: str, path: str, body: dict[str, Any] | None
) -> None:
    ops = server.admin_login("watcher", role="ops")
    assert call(server, "GET", "/api/admin/users", ops).status_code == 200
    assert error_of(call(server, method, path, ops, body))[:2] == (403, "forbidden")


def test_users_are_listed_searched_and_paginated(server: LiveServer, admin: str) -> None:
    for name in ("anna", "annabel", "zed"):
        user_id_of(server, name)
    found = call(server, "GET", "/api/admin/users", admin, q="ANNA").json()
    assert found["total"] == 2
    assert {u["nickname"] for u in found["items"]} == {"anna", "annabel"}
    assert set(found["items"][0]) >= {"openid", "quota", "banned", "last_seen_at", "message_count"}
    page = call(server, "GET", "/api/admin/users", admin, page=2, page_size=2).json()
    assert (page["total"], len(page["items"]), page["page"]) == (3, 1, 2)
    assert error_of(call(server, "GET", "/api/admin/users", admin, page_size=1000))[:2] == (
        400,
        "bad_request",
    )
    assert error_of(call(server, "GET", "/api/admin/users/999", admin))[:2] == (404, "not_found")


async def test_quota_grant_and_set_write_ledger_rows_with_the_admin_and_reason(
    server: LiveServer, admin: str
) -> None:
    user_id = user_id_of(server, "q")
    path = f"/api/admin/users/{user_id}/quota"
    granted = call(server, "POST", path, admin, {"action": "grant", "amount": 5, "reason": "gift"})
    assert granted.json()["quota"] == 105
    reset = call(server, "POST", path, admin, {"action": "set", "amount": 3, "reason": "abuse"})
    assert reset.json()["quota"] == 3
    ledger = call(server, "GET", f"/api/admin/users/{user_id}/ledger", admin).json()["items"]
    assert [(e["delta"], e["reason"], e["actor"], e["note"]) for e in ledger[:2]] == [
        (-102, "set", "root", "abuse"),
        (5, "grant", "root", "gift"),
    ]
    rows = server.call(QuotaLedger.filter(user_id=user_id).values_list("delta", flat=True))
    assert sum(rows) == 3, "the ledger adds up to the quota"
    ws, ready = await open_chat(server, server.login("q"))
    assert ready["quota"] == 3
    await ws.close()


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"action": "grant", "amount": -5, "reason": "r"}, "between 1 and 1000000"),
        ({"action": "grant", "amount": 10**9, "reason": "r"}, "between 1 and 1000000"),
        ({"action": "set", "amount": -1, "reason": "r"}, "between 0 and 1000000"),
        ({"action": "grant", "amount": 5}, "reason: Field required"),
        ({"action": "grant", "amount": 5, "reason": ""}, "reason"),
        ({"action": "double", "amount": 5, "reason": "r"}, "action"),
        ({"action": "grant", "amount": "lots", "reason": "r"}, "amount"),
    ],
)
def test_bad_quota_changes_are_refused_and_change_nothing(
    server: LiveServer, admin: str, body: dict[str, Any], words: str
) -> None:
    user_id = user_id_of(server, "bad")
    status, code, message = error_of(
        call(server, "POST", f"/api/admin/users/{user_id}/quota", admin, body)
    )
    assert (status, code) == (400, "bad_request")
    assert words in message
    assert call(server, "GET", f"/api/admin/users/{user_id}", admin).json()["quota"] == 100


def test_quota_for_an_unknown_user_is_not_found(server: LiveServer, admin: str) -> None:
    body = {"action": "grant", "amount": 1, "reason": "r"}
    response = call(server, "POST", "/api/admin/users/4242/quota", admin, body)
    assert error_of(response) == (404, "not_found", "user 4242 not found")


async def test_ban_closes_open_sockets_refuses_login_and_unban_restores_it(
    server: LiveServer, admin: str
) -> None:
    user_id = user_id_of(server, "troll")
    ws, _ = await open_chat(server, server.login("troll"))
    banned = call(server, "POST", f"/api/admin/users/{user_id}/ban", admin, {"reason": "spam"})
    assert banned.json()["banned"] is True
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), 5)
    assert ws.close_code == 4403
    refused = httpx.post(server.url + "/api/auth/login", json={"wid": "troll"})
    assert error_of(refused)[:2] == (403, "banned")
    call(server, "POST", f"/api/admin/users/{user_id}/unban", admin)
    assert httpx.post(server.url + "/api/auth/login", json={"wid": "troll"}).status_code == 200


async def test_conversations_show_transcripts_with_status_and_timings(
    server: LiveServer, admin: str
) -> None:
    ws, _ = await open_chat(server, server.login("talker"))
    await ws.send(chat_frame("hello there"))
    frames = await recv_until(ws, "done")
    await ws.close()
    conversation_id = frames[0]["conversation_id"]
    listed = call(server, "GET", "/api/admin/conversations", admin, q="hello").json()
    assert listed["total"] == 1
    assert listed["items"][0]["user"]["openid"] == "dev:talker"
    assert listed["items"][0]["message_count"] == 2
    transcript = call(server, "GET", f"/api/admin/conversations/{conversation_id}", admin).json()
    question, reply = transcript["messages"]
    assert (question["role"], question["content"]) == ("user", "hello there")
    assert reply["status"] == "complete"
    assert reply["completion_tokens"] == frames[-1]["usage"]["completion_tokens"]
    assert reply["first_token_ms"] is not None and reply["duration_ms"] is not None
    path = f"/api/admin/conversations/{conversation_id}"
    assert call(server, "DELETE", path, admin).status_code == 204
    assert error_of(call(server, "GET", path, admin))[:2] == (404, "not_found")


async def test_deleting_a_user_deletes_their_data(server: LiveServer, admin: str) -> None:
    ws, _ = await open_chat(server, server.login("leaver"))
    await ws.send(chat_frame("bye"))
    await recv_until(ws, "done")
    await ws.close()
    user_id = user_id_of(server, "leaver")
    assert call(server, "DELETE", f"/api/admin/users/{user_id}", admin).status_code == 204
    assert error_of(call(server, "GET", f"/api/admin/users/{user_id}", admin))[0] == 404
    assert call(server, "GET", "/api/admin/conversations", admin, user_id=user_id).json() == {
        "items": [],
        "total": 0,
        "page": 1,
        "page_size": 20,
    }
    assert server.call(QuotaLedger.filter(user_id=user_id).count()) == 0


async def test_settings_are_validated_and_apply_to_the_next_reply(
    server: LiveServer, admin: str
) -> None:
    current = call(server, "GET", "/api/admin/settings", admin).json()
    assert current["values"]["default_quota"] == 100
    assert current["limits"]["temperature"] == {"min": 0.0, "max": 2.0}
    assert current["limits"]["top_p"] == {"min": 0.0, "max": 1.0}
    status, code, message = error_of(
        call(server, "PUT", "/api/admin/settings", admin, {"temperature": 5})
    )
    assert (status, code) == (400, "invalid_setting")
    assert "temperature" in message and "2" in message
    unknown = call(server, "PUT", "/api/admin/settings", admin, {"warp": 9})
    assert "unknown setting(s) warp" in error_of(unknown)[2]
    changed = call(
        server, "PUT", "/api/admin/settings", admin, {"max_new_tokens": 1, "default_quota": 7}
    )
    assert changed.json()["values"]["max_new_tokens"] == 1
    ws, ready = await open_chat(server, server.login("newcomer"))
    assert ready["quota"] == 7
    await ws.send(chat_frame("hi"))
    done = (await recv_until(ws, "done"))[-1]
    await ws.close()
    assert done["usage"]["completion_tokens"] == 1


async def test_playground_chats_over_the_chat_socket(server: LiveServer, admin: str) -> None:
    ticket = call(server, "POST", "/api/admin/ws-ticket", admin, {"socket": "chat"}).json()
    ws = await connect(f"{server.ws_url}?ticket={ticket['ticket']}")
    ready = await recv(ws)
    assert ready["user"]["nickname"] == "root"
    await ws.send(chat_frame("test"))
    frames = await recv_until(ws, "done")
    await ws.close()
    assert frames[0]["type"] == "start" and frames[-1]["finish_reason"] in {"stop", "length"}


def test_stats_count_users_messages_and_tokens(server: LiveServer, admin: str) -> None:
    user_id_of(server, "one")
    stats = call(server, "GET", "/api/admin/stats", admin).json()
    assert stats["users"] == 1
    assert stats["messages_today"] == 0
    assert len(stats["per_day"]) == 14
    assert stats["per_day"][-1]["date"] == datetime.now(UTC).date().isoformat()
    assert stats["model"]["status"] == "ready"
    assert stats["model"]["name"] == server.app.state.engine.engine.info.model


def test_the_audit_log_records_who_did_what_and_filters(server: LiveServer, admin: str) -> None:
    user_id = user_id_of(server, "audited")
    other = server.admin_login("carol")
    call(
        server,
        "POST",
        f"/api/admin/users/{user_id}/quota",
        admin,
        {"action": "grant", "amount": 2, "reason": "thanks"},
    )
    call(server, "PUT", "/api/admin/settings", other, {"top_k": 10})
    entries = call(server, "GET", "/api/admin/audit", admin).json()["items"]
    assert [(e["admin"], e["action"]) for e in entries[:2]] == [
        ("carol", "settings.update"),
        ("root", "quota.grant"),
    ]
    assert entries[1]["target"] == f"user:{user_id}"
    assert entries[1]["detail"]["reason"] == "thanks"
    by_carol = call(server, "GET", "/api/admin/audit", admin, admin="carol").json()["items"]
    assert {e["action"] for e in by_carol} == {"login", "settings.update"}
    quota_only = call(server, "GET", "/api/admin/audit", admin, action="quota").json()["items"]
    assert [e["action"] for e in quota_only] == ["quota.grant"]
