"""The moderation page in Debian's Chromium against a real server: the word list editor,
blocked messages and reports with their verdicts, filters, dismiss and ban."""

from playwright.async_api import Page, expect

from server.safety.words import load_words
from storage.models import CaseState, ModerationCase, User
from tests.browser.console import sign_up
from tests.live_server import LiveServer, chat_frame, closed_with, open_chat, recv_until
from tests.server.admin.test_moderation import report


async def ask(server: LiveServer, token: str, content: str) -> dict:
    ws, _ = await open_chat(server, token)
    await ws.send(chat_frame(content))
    frames = await recv_until(ws, "done", "error")
    await ws.close()
    return frames[-1]


async def test_edit_the_word_list_then_review_what_it_blocked_and_ban_the_user(
    page: Page, server: LiveServer
) -> None:
    alice, alice_id = sign_up(server, "wx-alice", "爱丽丝")
    bob, _ = sign_up(server, "wx-bob", "鲍勃")
    await page.get_by_test_id("menu-moderation").click()
    await page.get_by_role("tab", name="敏感词库").click()
    await page.get_by_test_id("words-text").fill("违禁词\n  \nbad word")
    await page.get_by_test_id("words-save").click()
    await expect(page.get_by_test_id("words-count")).to_contain_text("共 2 个词")
    assert server.call(load_words()) == ["违禁词", "bad word"]

    assert (await ask(server, alice, "这是 违 禁 词"))["code"] == "content_blocked"
    answered = await ask(server, bob, "hello")
    assert report(server, bob, answered["message_id"], "不准确").status_code == 201

    await page.get_by_role("tab", name="待审内容").click()
    await page.get_by_test_id("case-search").click()
    rows = page.get_by_test_id("cases-table").locator(".el-table__body tr")
    await expect(rows).to_have_count(2)
    await expect(rows.nth(0)).to_contain_text("用户举报")
    await expect(rows.nth(0)).to_contain_text("不准确")
    await expect(rows.nth(1)).to_contain_text("用户消息")
    await expect(rows.nth(1)).to_contain_text("这是 违 禁 词")
    await expect(rows.nth(1)).to_contain_text("risky · words · 违禁词")

    await page.get_by_test_id("case-user").fill(str(alice_id))
    await page.get_by_test_id("case-search").click()
    await expect(rows).to_have_count(1)
    await expect(rows).to_contain_text("爱丽丝")

    ws, _ = await open_chat(server, alice)
    await rows.get_by_test_id("case-ban").click()
    await page.get_by_role("button", name="确定").click()
    await expect(rows).to_have_count(0)
    assert await closed_with(ws) == (4403, "banned")
    assert server.call(User.get(id=alice_id)).banned

    await page.get_by_test_id("case-user").fill("")
    await page.get_by_test_id("case-search").click()
    await expect(rows).to_have_count(1)
    await rows.get_by_test_id("case-dismiss").click()
    await expect(rows).to_have_count(0)
    states = server.call(ModerationCase.all().order_by("id").values_list("state", flat=True))
    assert states == [CaseState.BANNED, CaseState.DISMISSED]
