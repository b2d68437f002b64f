"""Client mistakes get a 4xx or `bad_request` naming the field, never `internal` or a 500, and
nothing is written: a real server, real sockets, SQLite and the running PostgreSQL."""

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.validation import ID_MAX, MAX_JSON_DEPTH, InputError, parse_json
from tests.live_server import LiveServer, chat_frame, error_of, open_chat, recv, recv_until
from tests.pg import new_pg_database
from tests.server.conftest import ServerFactory

HUGE_ID = 2**63


def admin_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def post_json(server: LiveServer, path: str, token: str, body: Any) -> httpx.Response:
    """POST `body` serialised as given (it may hold what json.dumps writes for lone
    surrogates, e.g. "\\ud800")."""
    return httpx.post(
        server.url + path,
        content=json.dumps(body) if not isinstance(body, bytes) else body,
        headers={**admin_headers(token), "Content-Type": "application/json"},
    )


@pytest.mark.parametrize(
    "path",
    [
        "/api/admin/me",
        "/api/admin/stats",
        "/api/admin/users",
        "/api/admin/users/1",
        "/api/admin/settings",
        "/api/admin/audit",
        "/api/ops/snapshot",
    ],
)
def test_head_without_a_session_is_401(server: LiveServer, path: str) -> None:
    response = httpx.head(server.url + path)
    assert response.status_code == 401


async def test_head_on_a_conversation_reads_it_and_deletes_nothing(server: LiveServer) -> None:
    token = server.login()
    ws, _ = await open_chat(server, token)
    await ws.send(chat_frame("keep me"))
    conversation_id = (await recv_until(ws, "done"))[0]["conversation_id"]
    await ws.close()
    path = f"/api/conversations/{conversation_id}"
    head = httpx.head(server.url + path, headers=admin_headers(token))
    assert head.status_code == 200
    assert server.get(path, token).status_code == 200, "HEAD must not delete the conversation"


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 20_000])
def test_deeply_nested_bodies_are_400(server: LiveServer, depth: int) -> None:
    admin = server.admin_login()
    body = f'{{"action": "grant", "amount": 1, "reason": {nested(depth)}}}'.encode()
    response = post_json(server, "/api/admin/users/1/quota", admin, body)
    assert error_of(response)[:2] == (400, "bad_request")
    assert "nested deeper than" in error_of(response)[2]


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 8000])
async def test_deeply_nested_frames_are_bad_request_and_the_socket_stays(
    server: LiveServer, depth: int
) -> None:
    ws, _ = await open_chat(server, server.login())
    await ws.send(f'{{"type": "ping", "x": {nested(depth)}}}')
    frame = await recv(ws)
    assert frame["type"] == "error" and frame["code"] == "bad_request"
    assert "nested deeper than" in frame["message"]
    await ws.send(json.dumps({"type": "ping"}))
    assert (await recv(ws))["type"] == "pong"
    await ws.close()


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        ({"type": "resume", "message_id": HUGE_ID, "offset": 0}, "message_id"),
        ({"type": "resume", "message_id": ID_MAX + 1, "offset": 0}, "message_id"),
        ({"type": "resume", "message_id": 1, "offset": True}, "offset"),
        (json.loads(chat_frame("hi")) | {"conversation_id": HUGE_ID}, "conversation_id"),
        (json.loads(chat_frame("hi")) | {"conversation_id": True}, "conversation_id"),
        (json.loads(chat_frame("hi")) | {"conversation_id": "1"}, "conversation_id"),
        (json.loads(chat_frame("hi")) | {"content": "a\ud800b"}, "content"),
        (json.loads(chat_frame("hi")) | {"content": "a\x00b"}, "content"),
        (json.loads(chat_frame("hi")) | {"client_msg_id": "\udfff"}, "client_msg_id"),
    ],
)
async def test_bad_frame_values_are_bad_request_naming_the_field(
    server: LiveServer, frame: dict[str, Any], field: str
) -> None:
    token = server.login()
    ws, ready = await open_chat(server, token)
    await ws.send(json.dumps(frame))
    error = await recv(ws)
    assert error["type"] == "error" and error["code"] == "bad_request", error
    assert field in error["message"]
    await ws.send(json.dumps({"type": "ping"}))
    assert (await recv(ws))["type"] == "pong"
    await ws.close()
    assert server.get("/api/conversations", token).json()["total"] == 0
    assert server.get("/api/me", token).json()["quota"] == ready["quota"], "nothing charged"


@pytest.mark.parametrize(
    ("path", "whose"),
    [
        (f"/api/conversations/{HUGE_ID}", "user"),
        (f"/api/conversations/{ID_MAX + 1}/messages", "user"),
        (f"/api/conversations/{10**30}", "user"),
        (f"/api/admin/users/{HUGE_ID}", "admin"),
        (f"/api/admin/users/{HUGE_ID}/ledger", "admin"),
        (f"/api/admin/conversations/{HUGE_ID}", "admin"),
    ],
)
def test_huge_ids_in_paths_are_404(server: LiveServer, path: str, whose: str) -> None:
    token = server.admin_login() if whose == "admin" else server.login()
    assert error_of(server.get(path, token))[:2] == (404, "not_found")


def test_huge_ids_in_admin_writes_are_404(server: LiveServer) -> None:
    admin = server.admin_login()
    grant = {"action": "grant", "amount": 1, "reason": "x"}
    response = post_json(server, f"/api/admin/users/{HUGE_ID}/quota", admin, grant)
    assert error_of(response)[:2] == (404, "not_found")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "grant", "amount": True, "reason": "x"}, "amount"),
        ({"action": "grant", "amount": "5", "reason": "x"}, "amount"),
        ({"action": "grant", "amount": 5.0, "reason": "x"}, "amount"),
        ({"action": "grant", "amount": 5, "reason": "a\ud800"}, "reason"),
        ({"action": "grant", "amount": 5, "reason": "a\x00"}, "reason"),
    ],
)
def test_quota_bodies_are_strict(server: LiveServer, body: dict[str, Any], field: str) -> None:
    admin = server.admin_login()
    _, user_id = server.login_user("strict")
    response = post_json(server, f"/api/admin/users/{user_id}/quota", admin, body)
    status, code, message = error_of(response)
    assert (status, code) == (400, "bad_request") and field in message
    assert server.get(f"/api/admin/users/{user_id}/ledger", admin).json()["total"] == 1, (
        "only the signup row: nothing was granted"
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"top_k": True}, "top_k"), ({"temperature": "0.5"}, "temperature")],
)
def test_settings_are_strict(server: LiveServer, changes: dict[str, Any], field: str) -> None:
    admin = server.admin_login()
    before = server.get("/api/admin/settings", admin).json()["values"]
    response = httpx.put(
        server.url + "/api/admin/settings", json=changes, headers=admin_headers(admin)
    )
    status, code, message = error_of(response)
    assert (status, code) == (400, "invalid_setting") and field in message
    assert server.get("/api/admin/settings", admin).json()["values"] == before


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_json_numbers_are_400(server: LiveServer, constant: str) -> None:
    admin = server.admin_login()
    response = httpx.put(
        server.url + "/api/admin/settings",
        content=f'{{"temperature": {constant}}}',
        headers={**admin_headers(admin), "Content-Type": "application/json"},
    )
    assert error_of(response)[:2] == (400, "bad_request")


@pytest.mark.postgres
async def test_nul_characters_are_refused_before_postgresql_sees_them(
    start_server: ServerFactory,
) -> None:
    async with new_pg_database() as url:
        server = start_server(db_url=url)
        try:
            _check_nul_everywhere(server)
            ws, _ = await open_chat(server, token := server.login("nul"))
            await ws.send(chat_frame("a\x00b"))
            error = await recv(ws)
            assert error["code"] == "bad_request" and "content" in error["message"]
            await ws.send(chat_frame("fine"))
            conversation_id = (await recv_until(ws, "done"))[0]["conversation_id"]
            await ws.close()
            rename = httpx.patch(
                f"{server.url}/api/conversations/{conversation_id}",
                json={"title": "x\x00y"},
                headers=admin_headers(token),
            )
            assert error_of(rename)[:2] == (400, "bad_request") and "title" in error_of(rename)[2]
            assert server.get("/api/conversations", token).json()["total"] == 1
            messages = server.get(f"/api/conversations/{conversation_id}/messages", token)
            assert messages.json()["items"][0]["content"] == "fine"
            big = server.get(f"/api/conversations/{conversation_id}/messages", token, before=2**40)
            assert error_of(big)[:2] == (400, "bad_request")
            assert server.get(f"/api/conversations/{ID_MAX + 1}", token).status_code == 404
        finally:
            server.stop()


def _check_nul_everywhere(server: LiveServer) -> None:
    login = httpx.post(server.url + "/api/auth/login", json={"wid": "nul", "nickname": "a\x00"})
    assert error_of(login)[:2] == (400, "bad_request") and "nickname" in error_of(login)[2]
    admin_login = httpx.post(
        server.url + "/api/admin/login", json={"username": "r\x00", "password": "x"}
    )
    assert error_of(admin_login)[:2] == (400, "bad_request")
    admin = server.admin_login()
    for path in ("/api/admin/users", "/api/admin/conversations", "/api/admin/audit"):
        for name in ("q", "admin", "action", "target"):
            response = server.get(path, admin, **{name: "x\x00"})
            assert response.status_code in (200, 400), (path, name, response.text)
            if response.status_code == 400:
                assert name in error_of(response)[2]
    assert error_of(server.get("/api/admin/users", admin, q="\x00"))[:2] == (400, "bad_request")


def test_parse_json_names_where_the_bad_string_is() -> None:
    with pytest.raises(InputError, match=r"^a\.b\[1\]: contains a NUL"):
        parse_json('{"a": {"b": ["ok", "x\\u0000"]}}')
    with pytest.raises(InputError, match="lone surrogate"):
        parse_json('"\\ud800"')
    assert parse_json('{"a": "\\ud83d\\ude00"}') == {"a": "😀"}, "a surrogate pair is fine"


# Values a client could put anywhere: every JSON type, odd numbers and odd strings.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    # Surrogates (Cs) and control characters (Cc: NUL) included.
    | st.text(st.characters(exclude_categories=[]), max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def fuzz_server(tiny_model: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    from tests.live_server import start_test_server

    server = start_test_server(tiny_model, tmp_path_factory.mktemp("fuzz") / "wxgpt.sqlite3")
    yield server
    server.stop()


# The values that broke servers before: booleans for numbers, ids past 32 and 64 bits,
# numbers in strings, NUL, lone surrogates.
edge_values = st.sampled_from(
    [True, False, 0, -1, 2**31, 2**63, 10**30, 1.5, 1e300, "", "1", "\x00", "a\ud800", "\udfff"]
)


def mutated(template: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A well-formed request with one field (or one more) set to an edge value or anything:
    mistakes deep in the handling are found, not only the first check's."""
    keys = st.sampled_from([*(key for key in template if key != "type"), "extra"])
    values = edge_values | json_values
    return keys.flatmap(lambda key: values.map(lambda value: {**template, key: value}))


FRAMES = [
    {"type": "chat", "conversation_id": None, "content": "hi", "client_msg_id": "fuzz"},
    {"type": "resume", "message_id": 2, "offset": 0},
]


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(frame=st.one_of(*(mutated(frame) for frame in FRAMES), json_values))
async def test_fuzzed_frames_never_get_internal(fuzz_server: LiveServer, frame: Any) -> None:
    ws, _ = await open_chat(fuzz_server, fuzz_server.login())
    await ws.send(json.dumps(frame))
    while (answer := await recv(ws))["type"] not in ("error", "done"):
        pass
    assert answer.get("code") != "internal", (frame, answer)
    await ws.close()


# (method, path, a body it accepts, whose token): every endpoint that reads a body.
BODIES = [
    ("POST", "/api/auth/login", {"wid": "fuzz", "nickname": "n", "invite": "ABCDEFGH"}, "user"),
    ("POST", "/api/admin/login", {"username": "fuzzer", "password": "password-fuzzer"}, "admin"),
    ("POST", "/api/admin/users/1/quota", {"action": "grant", "amount": 1, "reason": "r"}, "admin"),
    ("POST", "/api/admin/users/1/ban", {"reason": "r"}, "admin"),
    ("PUT", "/api/admin/settings", {"temperature": 0.5, "top_k": 40}, "admin"),
    ("PATCH", "/api/conversations/1", {"title": "t"}, "user"),
    ("POST", "/api/admin/ws-ticket", {"socket": "ops"}, "admin"),
    ("POST", "/api/admin/products", {"name": "p", "replies": 1, "price_fen": 1}, "admin"),
    ("PATCH", "/api/admin/products/1", {"active": False, "price_fen": 100}, "admin"),
]


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(target=st.sampled_from(BODIES), data=st.data())
def test_fuzzed_bodies_are_never_500(
    fuzz_server: LiveServer, fuzz_tokens: dict[str, str], target: Any, data: st.DataObject
) -> None:
    method, path, template, whose = target
    body = data.draw(st.one_of(mutated(template), json_values))
    response = httpx.request(
        method,
        fuzz_server.url + path,
        content=json.dumps(body),
        headers={**admin_headers(fuzz_tokens[whose]), "Content-Type": "application/json"},
    )
    assert response.status_code < 500, (method, path, body, response.text)


@pytest.fixture(scope="module")
def fuzz_tokens(fuzz_server: LiveServer) -> dict[str, str]:
    """A user who owns conversation 1 and an admin, for the fuzzed bodies."""
    user = fuzz_server.login("owner")
    asyncio.run(_chat_once(fuzz_server, user))
    return {"user": user, "admin": fuzz_server.admin_login("fuzzer")}


async def _chat_once(server: LiveServer, token: str) -> None:
    ws, _ = await open_chat(server, token)
    await ws.send(chat_frame("the first conversation"))
    await recv_until(ws, "done")
    await ws.close()
