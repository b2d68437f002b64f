"""The user's profile on a real server: the nickname checked like a message (scene 1), the
avatar uploaded, stored and served back, and both shown in the admin console's user view."""

from collections.abc import Iterator

import httpx
import pytest

from server.accounts.profile import AVATAR_MAX_BYTES
from server.safety.words import save_words
from storage.models import CaseKind, ModerationCase
from tests.live_server import LiveServer
from tests.server.admin.test_api import call
from tests.server.conftest import ServerFactory
from tests.wechat_api import WeChatApi

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64)


def patch_me(server: LiveServer, token: str, body: object) -> httpx.Response:
    return httpx.patch(
        server.url + "/api/me", json=body, headers={"Authorization": f"Bearer {token}"}
    )


def upload(server: LiveServer, token: str, data: bytes, content_type: str) -> httpx.Response:
    return httpx.post(
        server.url + "/api/me/avatar",
        content=data,
        headers={"Authorization": f"Bearer {token}", "Content-Type": content_type},
    )


@pytest.fixture
def wechat() -> Iterator[WeChatApi]:
    api = WeChatApi(risky=["badname"]).start()
    yield api
    api.stop()


def test_the_nickname_is_saved_and_shown(server: LiveServer) -> None:
    token = server.login()
    saved = patch_me(server, token, {"nickname": "  小明  "})
    assert saved.status_code == 200
    assert saved.json()["user"]["nickname"] == "小明"
    assert server.get("/api/me", token).json()["user"]["nickname"] == "小明"


def test_a_bad_nickname_is_refused_with_what_is_wrong(server: LiveServer) -> None:
    token = server.login()
    for body, words in (({"nickname": "x" * 33}, "at most 32"), ({"nickname": "   "}, "blank")):
        response = patch_me(server, token, body)
        assert response.status_code == 400
        assert words in response.json()["error"]["message"]


def test_a_nickname_with_a_listed_word_is_refused_and_filed(server: LiveServer) -> None:
    server.call(save_words(["spam"]))
    token, user_id = server.login_user("carol")
    response = patch_me(server, token, {"nickname": "Ｓｐａｍ King"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "content_blocked"
    assert server.get("/api/me", token).json()["user"]["nickname"] == "carol"
    [case] = server.call(ModerationCase.all())
    assert (case.kind, case.user_id, case.content) == (CaseKind.PROFILE, user_id, "Ｓｐａｍ King")


def test_wechat_checks_the_nickname_with_scene_1(
    start_server: ServerFactory, wechat: WeChatApi
) -> None:
    server = start_server(**wechat.settings())
    token = server.login("dave")
    assert patch_me(server, token, {"nickname": "the badname"}).status_code == 422
    assert patch_me(server, token, {"nickname": "Dave"}).status_code == 200
    assert [(c["scene"], c["content"]) for c in wechat.checks] == [
        (1, "the badname"),
        (1, "Dave"),
    ]


def test_an_avatar_is_stored_and_served_back_with_a_new_url_each_time(
    server: LiveServer,
) -> None:
    token, user_id = server.login_user("erin")
    assert server.get("/api/me", token).json()["user"]["avatar_url"] is None
    first = upload(server, token, PNG, "image/png")
    assert first.status_code == 200
    url = first.json()["user"]["avatar_url"]
    assert url == f"/api/avatars/{user_id}?v=1"
    served = httpx.get(server.url + url)
    assert served.status_code == 200
    assert served.content == PNG
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    jpeg = b"\xff\xd8\xff\xe0" + bytes(32)
    second = upload(server, token, jpeg, "image/jpeg")
    assert second.json()["user"]["avatar_url"] == f"/api/avatars/{user_id}?v=2"
    assert httpx.get(server.url + second.json()["user"]["avatar_url"]).content == jpeg
    admin = server.admin_login()
    shown = call(server, "GET", f"/api/admin/users/{user_id}", admin).json()
    assert shown["avatar_url"] == f"/api/avatars/{user_id}?v=2"


def test_an_avatar_of_the_wrong_type_size_or_content_is_refused(server: LiveServer) -> None:
    token = server.login()
    wrong_type = upload(server, token, b"GIF89a" + bytes(16), "image/gif")
    assert wrong_type.status_code == 415
    assert "image/jpeg, image/png, image/webp" in wrong_type.json()["error"]["message"]
    too_big = upload(server, token, PNG + bytes(AVATAR_MAX_BYTES), "image/png")
    assert too_big.status_code == 413
    assert str(AVATAR_MAX_BYTES) in too_big.json()["error"]["message"]
    lying = upload(server, token, b"not an image at all", "image/png")
    assert lying.status_code == 400
    assert "not a image/png image" in lying.json()["error"]["message"]
    assert httpx.get(server.url + "/api/avatars/999").status_code == 404
    json_body = httpx.post(
        server.url + "/api/me/avatar", json={}, headers={"Authorization": f"Bearer {token}"}
    )
    assert json_body.status_code == 415
