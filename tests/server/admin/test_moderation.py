"""The moderation page's API on a real server: cases from blocked text and users' reports,
filters, dismiss and ban (audited), the word list editor and the dashboard's count."""

from datetime import UTC, datetime, timedelta

import httpx

from storage.models import AuditEntry
from tests.live_server import LiveServer, chat_frame, closed_with, open_chat, recv_until
from tests.server.admin.test_api import call


def put_words(server: LiveServer, admin: str, words: list[str]) -> httpx.Response:
    return call(server, "PUT", "/api/admin/moderation/words", admin, {"words": words})


async def chat(server: LiveServer, token: str, content: str) -> list[dict]:
    ws, _ = await open_chat(server, token)
    await ws.send(chat_frame(content))
    frames = await recv_until(ws, "done", "error")
    await ws.close()
    return frames


def report(server: LiveServer, token: str, message_id: int, reason: str = "") -> httpx.Response:
    return httpx.post(
        server.url + "/api/reports",
        json={"message_id": message_id, "reason": reason},
        headers={"Authorization": f"Bearer {token}"},
    )


def cases(server: LiveServer, admin: str, **params: object) -> dict:
    response = call(server, "GET", "/api/admin/moderation/cases", admin, **params)
    assert response.status_code == 200, response.text
    body: dict = response.json()
    return body


async def test_the_word_list_editor_applies_at_once_and_says_what_is_wrong(
    server: LiveServer,
) -> None:
    admin = server.admin_login()
    token = server.login()
    assert (await chat(server, token, "tell me about spam"))[-1]["type"] == "done"
    saved = put_words(server, admin, [" spam ", "SPAM", "eggs", ""])
    assert saved.status_code == 200
    assert saved.json()["words"] == ["spam", "eggs"]
    assert call(server, "GET", "/api/admin/moderation/words", admin).json()["words"] == [
        "spam",
        "eggs",
    ]
    assert (await chat(server, token, "tell me about S.P.A.M"))[-1]["code"] == "content_blocked"
    too_long = put_words(server, admin, ["x" * 65])
    assert too_long.status_code == 400
    assert "at most 64 characters" in too_long.json()["error"]["message"]
    ops = server.admin_login("watcher", role="ops")
    assert put_words(server, ops, ["other"]).status_code == 403
    [entry] = server.call(AuditEntry.filter(action="words.update"))
    assert entry.detail == {"count": 2}


async def test_blocked_text_and_reports_are_listed_filtered_and_acted_on(
    server: LiveServer,
) -> None:
    admin = server.admin_login()
    put_words(server, admin, ["forbidden"])
    alice, alice_id = server.login_user("alice")
    bob, bob_id = server.login_user("bob")
    assert (await chat(server, alice, "a forbidden question"))[-1]["code"] == "content_blocked"
    frames = await chat(server, bob, "a fine question")
    reply_id = frames[-1]["message_id"]
    assert report(server, bob, reply_id, "rude").status_code == 201
    again = report(server, bob, reply_id)
    assert again.status_code == 200
    assert report(server, alice, reply_id).status_code == 404

    listed = cases(server, admin)
    assert listed["total"] == 2
    reported, blocked = listed["items"]
    assert (reported["kind"], reported["user"]["id"], reported["note"]) == (
        "report",
        bob_id,
        "rude",
    )
    assert reported["message"]["id"] == reply_id
    assert reported["content"] == reported["message"]["content"]
    assert (blocked["kind"], blocked["verdict"], blocked["checker"], blocked["label"]) == (
        "input",
        "risky",
        "words",
        "forbidden",
    )
    assert blocked["content"] == "a forbidden question"
    assert [c["id"] for c in cases(server, admin, user_id=alice_id)["items"]] == [blocked["id"]]
    assert cases(server, admin, kind="report")["total"] == 1
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert cases(server, admin, since=tomorrow)["total"] == 0
    assert cases(server, admin, until=tomorrow)["total"] == 2
    bad = call(server, "GET", "/api/admin/moderation/cases", admin, since="yesterday")
    assert bad.status_code == 400
    assert "ISO 8601" in bad.json()["error"]["message"]

    dismissed = call(
        server,
        "POST",
        f"/api/admin/moderation/cases/{reported['id']}/action",
        admin,
        {"action": "dismiss"},
    )
    assert dismissed.json()["state"] == "dismissed"
    assert dismissed.json()["resolved_by"] == "root"
    assert cases(server, admin, state="open")["total"] == 1

    ws, _ = await open_chat(server, alice)
    banned = call(
        server,
        "POST",
        f"/api/admin/moderation/cases/{blocked['id']}/action",
        admin,
        {"action": "ban", "reason": "repeated"},
    )
    assert banned.status_code == 200
    assert banned.json()["state"] == "banned"
    assert banned.json()["user"]["banned"] is True
    assert await closed_with(ws) == (4403, "banned")
    assert cases(server, admin, state="open")["total"] == 0
    [entry] = server.call(AuditEntry.filter(action="user.ban"))
    assert entry.target == f"user:{alice_id}"
    assert entry.detail["case"] == blocked["id"]
    missing = call(
        server, "POST", "/api/admin/moderation/cases/999/action", admin, {"action": "dismiss"}
    )
    assert missing.status_code == 404
    stats = call(server, "GET", "/api/admin/stats", admin).json()
    today = datetime.now(UTC).date().isoformat()
    assert stats["blocked_per_day"][-1] == {"date": today, "blocked": 1}
