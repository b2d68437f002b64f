"""Login (development and WeChat code2Session) and the profile."""

import threading
import time
from collections.abc import Iterator

import httpx
import itsdangerous.timed
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from server.accounts.tokens import TokenCodec
from tests.live_server import LiveServer, error_of
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
