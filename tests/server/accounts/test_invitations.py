"""Invitations: a new user who logs in with an invite code rewards both sides, once."""

import httpx

from server.chat.settings import save_chat_settings
from storage.models import LedgerReason, QuotaLedger
from tests.live_server import LiveServer


def _login(server: LiveServer, wid: str, invite: str | None = None) -> dict:
    body = {"wid": wid} if invite is None else {"wid": wid, "invite": invite}
    response = httpx.post(server.url + "/api/auth/login", json=body)
    response.raise_for_status()
    return response.json()


def _me(server: LiveServer, token: str) -> dict:
    return server.get("/api/me", token).json()


def _invite_rows(server: LiveServer, user_id: int) -> list[tuple[int, str]]:
    rows = server.call(
        QuotaLedger.filter(user_id=user_id, reason=LedgerReason.INVITE).order_by("id")
    )
    return [(row.delta, row.client_msg_id) for row in rows]


def test_an_invitation_rewards_both_sides_once(server: LiveServer) -> None:
    server.call(save_chat_settings({"invite_reward": 5}))
    host = _login(server, "host")
    code = _me(server, host["token"])["invite_code"]
    assert len(code) == 8
    assert _me(server, host["token"])["invite_code"] == code
    guest = _login(server, "guest", code.lower())
    assert (guest["invite_reward"], guest["user"]["quota"]) == (5, 105)
    assert _me(server, host["token"])["quota"] == 105
    # Logging in again with the code, as a known user, gives nothing more.
    again = _login(server, "guest", code)
    assert (again["invite_reward"], again["user"]["quota"]) == (0, 105)
    assert _me(server, host["token"])["quota"] == 105
    assert _invite_rows(server, guest["user"]["id"]) == [(5, "invitation")]
    assert _invite_rows(server, host["user"]["id"]) == [(5, f"invitee:{guest['user']['id']}")]


def test_inviting_oneself_or_an_unknown_code_gives_nothing(server: LiveServer) -> None:
    server.call(save_chat_settings({"invite_reward": 5}))
    host = _login(server, "self-host")
    code = _me(server, host["token"])["invite_code"]
    assert _login(server, "self-host", code)["invite_reward"] == 0
    assert _login(server, "stranger", "ZZZZZZZZ")["invite_reward"] == 0
    assert _me(server, host["token"])["quota"] == 100
    assert _invite_rows(server, host["user"]["id"]) == []


def test_the_inviter_is_rewarded_up_to_the_daily_cap(server: LiveServer) -> None:
    server.call(save_chat_settings({"invite_reward": 3, "invite_daily_cap": 2}))
    host = _login(server, "popular")
    code = _me(server, host["token"])["invite_code"]
    guests = [_login(server, f"fan{n}", code) for n in range(3)]
    # Past the cap the newcomer is still welcomed; only the inviter's reward stops.
    assert [guest["invite_reward"] for guest in guests] == [3, 3, 3]
    assert _me(server, host["token"])["quota"] == 106


def test_invitations_are_off_while_they_reward_nothing(server: LiveServer) -> None:
    host = _login(server, "quiet")
    code = _me(server, host["token"])["invite_code"]
    assert _login(server, "newcomer", code)["invite_reward"] == 0
    assert _me(server, host["token"])["quota"] == 100
