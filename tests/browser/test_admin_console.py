"""The admin console in Debian's Chromium against a real server: login, users and quotas,
bans that close the user's socket, settings that change the next reply, the playground."""

import asyncio
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect
from websockets.exceptions import ConnectionClosed

from server.chat.settings import load_chat_settings, save_chat_settings
from storage import admins
from storage.models import Conversation, Message, Role, User
from tests.browser.console import (
    create_admin,
    fill_login,
    log_in,
    new_page,
    send_in_playground,
    sign_up,
)
from tests.live_server import LiveServer, open_chat, passes_for_deltas
from tests.pace import StepFile, forward_gate

CURSOR = "▍"
# ms: an upper bound for a short reply to end on a busy machine, not an expected time.
REPLY_MS = 60_000


async def test_find_a_user_grant_quota_and_ban_them_which_closes_their_socket(
    page: Page, server: LiveServer
) -> None:
    token, user_id = sign_up(server, "wx-alice", "爱丽丝")
    sign_up(server, "wx-bob", "鲍勃")
    ws, _ = await open_chat(server, token)

    await page.get_by_test_id("menu-users").click()
    await page.get_by_test_id("user-search").fill("爱丽")
    await page.get_by_test_id("user-search-button").click()
    rows = page.get_by_test_id("users-table").locator(".el-table__body tr")
    await expect(rows).to_have_count(1)
    await expect(rows).to_contain_text("dev:wx-alice")
    await page.get_by_test_id(f"open-user-{user_id}").click()
    await expect(page.get_by_test_id("user-quota")).to_have_text("100")

    await page.get_by_test_id("quota-button").click()
    await page.get_by_test_id("quota-amount").locator("input").fill("25")
    await page.get_by_test_id("quota-reason").fill("客服补偿")
    await page.get_by_test_id("quota-submit").click()
    await expect(page.get_by_test_id("user-quota")).to_have_text("125")
    assert server.call(User.get(id=user_id)).quota == 125
    await page.get_by_role("tab", name="配额流水").click()
    ledger = page.get_by_test_id("ledger-table").locator(".el-table__body tr").first
    await expect(ledger).to_contain_text("+25")
    await expect(ledger).to_contain_text("root")
    await expect(ledger).to_contain_text("客服补偿")

    await page.get_by_test_id("ban-button").click()
    await page.get_by_test_id("ban-reason").fill("刷屏")
    await page.get_by_test_id("ban-submit").click()
    await expect(page.get_by_test_id("user-banned")).to_have_text("已封禁")
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403

    await page.get_by_test_id("menu-audit").click()
    await page.get_by_test_id("audit-target").fill(f"user:{user_id}")
    await page.get_by_test_id("audit-search").click()
    entries = page.get_by_test_id("audit-table").locator(".el-table__body tr")
    await expect(entries).to_have_count(2)
    await expect(entries.nth(0)).to_contain_text("user.ban")
    await expect(entries.nth(1)).to_contain_text("quota.grant")


async def test_bad_password_refused_language_remembered_and_a_401_sends_to_login(
    browser: Browser, server: LiveServer
) -> None:
    password = create_admin(server, "root")
    page = await new_page(browser)
    await page.goto(server.url + "/admin/users")
    await page.wait_for_url("**/admin/login?redirect=/users")
    await fill_login(page, "root", "not-the-password")
    await expect(page.get_by_test_id("login-error")).to_be_visible()
    await fill_login(page, "root", password)
    await page.wait_for_url("**/admin/users")

    await page.get_by_test_id("lang-toggle").click()
    await expect(page.get_by_test_id("menu-users")).to_have_text("Users")
    await page.reload()
    await expect(page.get_by_test_id("menu-conversations")).to_have_text("Conversations")

    cookie = next(c for c in await page.context.cookies() if c["name"] == "wxgpt_admin")
    server.call(admins.close_session(cookie["value"]))
    await page.get_by_test_id("menu-conversations").click()
    await page.wait_for_url("**/admin/login?redirect=/conversations")


async def test_a_changed_setting_applies_to_the_next_playground_reply(
    page: Page, server: LiveServer
) -> None:
    await page.get_by_test_id("menu-settings").click()
    temperature = page.get_by_test_id("setting-temperature").locator("input")
    await temperature.fill("5")
    await temperature.press("Tab")
    await expect(page.get_by_text("需在 0 到 2 之间")).to_be_visible()
    await temperature.fill("0")
    # 0 is inside the range the form shows, but top_p must be above it: the server says so.
    top_p = page.get_by_test_id("setting-top_p").locator("input")
    await top_p.fill("0")
    await top_p.press("Tab")
    await page.get_by_test_id("settings-save").click()
    await expect(page.get_by_test_id("settings-error")).to_contain_text("top_p")
    assert server.call(load_chat_settings()).top_p == 0.9

    await top_p.fill("0.9")
    tokens = page.get_by_test_id("setting-max_new_tokens").locator("input")
    await tokens.fill("1")
    await tokens.press("Tab")
    await page.get_by_test_id("settings-save").click()
    await expect(page.get_by_text("已保存")).to_be_visible()
    assert server.call(load_chat_settings()).max_new_tokens == 1

    await page.get_by_test_id("menu-playground").click()
    await send_in_playground(page, "你好")
    done = page.locator("[data-testid=assistant-turn][data-state=done]")
    await expect(done.get_by_test_id("turn-usage")).to_have_attribute("data-completion-tokens", "1")


# Records every state the playground's reply passes through, as the browser draws it.
WATCH_REPLY = """() => {
  window.replyStates = [];
  const log = document.querySelector('[data-testid=chat-log]');
  new MutationObserver(() => {
    const turn = log.querySelector('[data-testid=assistant-turn]');
    if (turn) {
      const text = turn.querySelector('[data-testid=turn-text]').textContent;
      window.replyStates.push([turn.dataset.state, text]);
    }
  }).observe(log, {subtree: true, childList: true, characterData: true, attributes: true});
}"""


async def test_playground_types_the_reply_live_stops_it_and_starts_over(
    page: Page, server: LiveServer, tmp_path: Path
) -> None:
    with forward_gate(tmp_path / "gate") as gate:
        await stream_stop_and_start_over(page, server, gate)


async def shown_text_grows(page: Page, turn: int, longer_than: int) -> int:
    """Wait until the playground's `turn`-th reply shows more than `longer_than` characters
    (its cursor aside); their number."""
    shown = await page.wait_for_function(
        """([turn, n]) => {
          const turns = document.querySelectorAll('[data-testid=assistant-turn]');
          const text = turns[turn]?.querySelector('[data-testid=turn-text]').textContent;
          const length = text === undefined ? -1 : text.replace('\u258d', '').length;
          return length > n && length;
        }""",
        arg=[turn, longer_than],
    )
    length: int = await shown.json_value()
    return length


async def stream_stop_and_start_over(page: Page, server: LiveServer, gate: StepFile) -> None:
    server.call(save_chat_settings({"max_new_tokens": 32}))
    await page.get_by_test_id("menu-playground").click()
    await expect(page.get_by_test_id("chat-status")).to_have_attribute("data-status", "open")
    await page.evaluate(WATCH_REPLY)
    gate.allow_more(passes_for_deltas(1))
    await send_in_playground(page, "讲个故事")
    # One piece, then another: the browser draws the reply as it grows.
    shown = await shown_text_grows(page, 0, 0)
    gate.allow_more(passes_for_deltas(1))
    await shown_text_grows(page, 0, shown)
    gate.open()
    done = page.locator("[data-testid=assistant-turn][data-state=done]")
    await expect(done).to_be_visible(timeout=REPLY_MS)

    states: list[list[str]] = await page.evaluate("window.replyStates")
    final = states[-1][1]
    stored = server.call(Message.filter(role=Role.ASSISTANT).order_by("-id").first())
    assert stored is not None and final == stored.content
    growing = {text.removesuffix(CURSOR) for state, text in states if state == "streaming"}
    growing.discard("")
    assert len(growing) >= 2, states
    assert all(final.startswith(text) for text in growing)
    first_conversation = await page.get_by_test_id("chat-conversation").text_content()

    server.call(save_chat_settings({"max_new_tokens": 512}))
    gate.allow_more(passes_for_deltas(1))
    await send_in_playground(page, "再讲一个长的")
    await shown_text_grows(page, 1, 0)
    await page.get_by_test_id("chat-stop").click()
    await server.until_stop_flagged()
    gate.open()
    stopped = page.locator("[data-testid=assistant-turn][data-state=done]").nth(1)
    usage = stopped.get_by_test_id("turn-usage")
    await expect(usage).to_contain_text("cancelled", timeout=REPLY_MS)
    assert int(await usage.get_attribute("data-completion-tokens") or 0) < 512

    server.call(save_chat_settings({"max_new_tokens": 8}))
    await page.get_by_test_id("chat-new").click()
    await expect(page.get_by_test_id("chat-conversation")).to_have_text("—")
    await send_in_playground(page, "新的话题")
    await expect(page.locator("[data-testid=assistant-turn][data-state=done]")).to_have_count(
        1, timeout=REPLY_MS
    )
    second_conversation = await page.get_by_test_id("chat-conversation").text_content()
    assert second_conversation != first_conversation
    owner = server.call(User.get(openid="admin:root"))
    assert server.call(Conversation.filter(user_id=owner.id).count()) == 2


async def test_a_read_only_ops_account_cannot_change_anything_and_logs_out(
    browser: Browser, server: LiveServer
) -> None:
    _, user_id = sign_up(server, "wx-carol", "卡罗尔")
    page = await new_page(browser)
    await log_in(page, server, "watcher", create_admin(server, "watcher", role="ops"))
    await expect(page.get_by_test_id("whoami")).to_contain_text("ops")

    await page.goto(f"{server.url}/admin/users/{user_id}")
    await expect(page.get_by_test_id("user-quota")).to_have_text("100")
    for button in ["quota-button", "ban-button", "delete-user"]:
        await expect(page.get_by_test_id(button)).to_be_disabled()
    await page.get_by_test_id("menu-settings").click()
    await expect(page.get_by_test_id("settings-save")).to_be_disabled()
    await page.get_by_test_id("menu-playground").click()
    await expect(page.get_by_test_id("chat-input")).to_be_disabled()

    await page.get_by_test_id("logout").click()
    await page.wait_for_url("**/admin/login")
    await page.goto(server.url + "/admin/users")
    await page.wait_for_url("**/admin/login?redirect=/users")
