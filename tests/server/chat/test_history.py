"""The user's own conversations and messages over HTTP."""

import httpx
import pytest

from tests.live_server import LiveServer, chat_frame, error_of, open_chat, recv_until


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
