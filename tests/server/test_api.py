import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import itsdangerous.timed
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from server.auth import TokenCodec
from server.config import Settings
from tests.live_server import LiveServer, chat_frame, error_of, open_chat, recv_until
from tests.server.conftest import ServerFactory


@pytest.fixture
def fake_wechat() -> Iterator[str]:
    """A stand-in for WeChat's code2Session on loopback: code 'good-<name>' → openid 'o-<name>'."""
    seen: list[dict] = []

    async def code2session(request: Request) -> JSONResponse:
        params = dict(request.query_params)
        seen.append(params)
        if params.get("appid") != "wx-app" or params.get("secret") != "wx-secret":
            return JSONResponse({"errcode": 40125, "errmsg": "invalid appsecret"})
        code = params.get("js_code", "")
        if not code.startswith("good-") or params.get("grant_type") != "authorization_code":
            return JSONResponse({"errcode": 40029, "errmsg": "invalid code"})
        return JSONResponse({"openid": "o-" + code.removeprefix("good-"), "session_key": "k"})

    app = Starlette(routes=[Route("/sns/jscode2session", code2session)])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/sns/jscode2session"
    server.should_exit = True
    thread.join()


def test_health_and_readiness(server: LiveServer) -> None:
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(server.url + "/readyz")
    assert ready.status_code == 200
    assert ready.json()["model"] == server.settings.model.rsplit("/", 1)[-1]


async def test_a_model_that_fails_to_load_is_reported(tmp_path: Path) -> None:
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "gpt2"}')
    settings = Settings(
        _env_file=None,
        db_url=f"sqlite://{tmp_path / 'db.sqlite3'}",
        model=str(broken),
        dev_login=True,
    )
    server = LiveServer(settings).start(wait_for_model=False)
    try:
        for _ in range(200):
            ready = httpx.get(server.url + "/readyz")
            if "failed" in ready.text:
                break
            await asyncio.sleep(0.05)
        status, code, message = error_of(ready)
        assert (status, code) == (503, "unavailable")
        assert message.startswith("model failed to load")
        assert httpx.get(server.url + "/healthz").status_code == 200
        ws, _ = await open_chat(server, server.login())
        await ws.send(chat_frame("anyone there?"))
        error = (await recv_until(ws, "error"))[-1]
        assert error["code"] == "internal"
        assert "failed to load" in error["message"]
        await ws.close()
    finally:
        server.stop()


def test_dev_login_creates_the_user_once_with_the_default_quota(server: LiveServer) -> None:
    first = httpx.post(
        server.url + "/api/auth/login", json={"wid": "alice", "nickname": "Alice"}
    ).json()
    again = httpx.post(server.url + "/api/auth/login", json={"wid": "alice"}).json()
    assert first["user"]["id"] == again["user"]["id"]
    assert first["user"]["quota"] == 100
    assert first["expires_in"] == server.settings.token_ttl
    me = server.get("/api/me", first["token"]).json()
    assert (me["user"]["nickname"], me["quota"]) == ("Alice", 100)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({}, 'either "code"'),
        ({"wid": "a", "code": "b"}, 'either "code"'),
        ({"wid": ""}, "wid"),
        ({"wid": "has space"}, "wid"),
        ({"wid": "x" * 65}, "wid"),
    ],
)
def test_login_rejects_bad_bodies(server: LiveServer, body: dict, words: str) -> None:
    status, code, message = error_of(httpx.post(server.url + "/api/auth/login", json=body))
    assert (status, code) == (400, "bad_request")
    assert words in message


def test_login_rejects_non_json(server: LiveServer) -> None:
    response = httpx.post(server.url + "/api/auth/login", content=b"{oops")
    assert error_of(response) == (400, "bad_request", "the body is not valid JSON")


def test_dev_login_is_refused_when_off(start_server: ServerFactory) -> None:
    server = start_server(dev_login=False)
    status, code, message = error_of(httpx.post(server.url + "/api/auth/login", json={"wid": "x"}))
    assert (status, code) == (403, "forbidden")
    assert "development login is off" in message


def test_code_login_goes_through_code2session(
    start_server: ServerFactory, fake_wechat: str
) -> None:
    server = start_server(
        dev_login=False,
        wechat_appid="wx-app",
        wechat_secret="wx-secret",
        wechat_code2session_url=fake_wechat,
    )
    response = httpx.post(server.url + "/api/auth/login", json={"code": "good-bob"})
    assert response.status_code == 200
    token = response.json()["token"]
    assert server.get("/api/me", token).status_code == 200
    again = httpx.post(server.url + "/api/auth/login", json={"code": "good-bob"}).json()
    assert again["user"]["id"] == response.json()["user"]["id"]
    status, code, message = error_of(
        httpx.post(server.url + "/api/auth/login", json={"code": "stale"})
    )
    assert (status, code) == (401, "unauthorized")
    assert "40029" in message


def test_code_login_unconfigured_is_unavailable(server: LiveServer) -> None:
    status, code, _ = error_of(httpx.post(server.url + "/api/auth/login", json={"code": "good-x"}))
    assert (status, code) == (503, "unavailable")


def test_me_refuses_missing_forged_and_expired_tokens(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert error_of(httpx.get(server.url + "/api/me"))[:2] == (401, "unauthorized")
    assert error_of(server.get("/api/me", "forged"))[:2] == (401, "unauthorized")
    user_id = httpx.post(server.url + "/api/auth/login", json={"wid": "old"}).json()["user"]["id"]
    codec = TokenCodec(server.settings.secret_key, server.settings.token_ttl)
    long_ago = int(time.time()) - server.settings.token_ttl - 60
    monkeypatch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp", lambda self: long_ago)
    expired = codec.issue(user_id)
    monkeypatch.undo()
    status, code, message = error_of(server.get("/api/me", expired))
    assert (status, code) == (401, "unauthorized")
    assert "expired" in message


async def test_conversations_list_rename_delete_only_own(server: LiveServer) -> None:
    token = server.login()
    ws, _ = await open_chat(server, token)
    ids = []
    for text in ["first question", "second   question\nwith lines", "third"]:
        await ws.send(chat_frame(text))
        ids.append((await recv_until(ws, "done"))[0]["conversation_id"])
    await ws.close()

    page = server.get("/api/conversations", token, limit=2).json()
    assert [c["id"] for c in page["items"]] == [ids[2], ids[1]], "newest first"
    assert (page["total"], page["next_offset"]) == (3, 2)
    rest = server.get("/api/conversations", token, limit=2, offset=2).json()
    assert [c["id"] for c in rest["items"]] == [ids[0]]
    assert rest["next_offset"] is None
    assert page["items"][1]["title"] == "second question with lines"

    headers = {"Authorization": f"Bearer {token}"}
    renamed = httpx.patch(
        f"{server.url}/api/conversations/{ids[0]}", json={"title": " Trip plans "}, headers=headers
    )
    assert renamed.json()["title"] == "Trip plans"
    assert error_of(
        httpx.patch(f"{server.url}/api/conversations/{ids[0]}", json={"title": ""}, headers=headers)
    )[:2] == (
        400,
        "bad_request",
    )

    stranger = server.login()
    for method in ("GET", "PATCH", "DELETE"):
        response = httpx.request(
            method,
            f"{server.url}/api/conversations/{ids[0]}",
            json={"title": "mine now"},
            headers={"Authorization": f"Bearer {stranger}"},
        )
        assert error_of(response)[:2] == (404, "not_found"), method
    assert error_of(server.get(f"/api/conversations/{ids[0]}/messages", stranger))[:2] == (
        404,
        "not_found",
    )

    assert (
        httpx.delete(f"{server.url}/api/conversations/{ids[0]}", headers=headers).status_code == 204
    )
    assert error_of(server.get(f"/api/conversations/{ids[0]}/messages", token))[:2] == (
        404,
        "not_found",
    )
    assert server.get("/api/conversations", token).json()["total"] == 2


async def test_messages_are_paginated_newest_page_first(server: LiveServer) -> None:
    token = server.login()
    ws, _ = await open_chat(server, token)
    conversation_id = None
    for n in range(3):
        await ws.send(chat_frame(f"turn {n}", conversation_id))
        conversation_id = (await recv_until(ws, "done"))[0]["conversation_id"]
    await ws.close()
    newest = server.get(f"/api/conversations/{conversation_id}/messages", token, limit=4).json()
    assert [m["role"] for m in newest["items"]] == ["user", "assistant", "user", "assistant"]
    assert newest["items"][0]["content"] == "turn 1"
    assert newest["has_more"] is True
    older = server.get(
        f"/api/conversations/{conversation_id}/messages",
        token,
        limit=4,
        before=newest["items"][0]["id"],
    ).json()
    assert [m["content"] for m in older["items"] if m["role"] == "user"] == ["turn 0"]
    assert older["has_more"] is False


@pytest.mark.parametrize(
    ("query", "words"),
    [({"limit": 0}, "limit"), ({"limit": "many"}, "integer"), ({"offset": -1}, "offset")],
)
def test_bad_pagination_is_a_400(server: LiveServer, query: dict, words: str) -> None:
    status, code, message = error_of(server.get("/api/conversations", server.login(), **query))
    assert (status, code) == (400, "bad_request")
    assert words in message


def test_unknown_path_uses_the_error_shape(server: LiveServer) -> None:
    assert error_of(httpx.get(server.url + "/api/nothing"))[:2] == (404, "not_found")
