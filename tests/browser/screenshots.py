"""Regenerate admin_ui/screenshots/*.png: every console page, in Chinese, against a live server
with the tiny test model and a few seeded users (`make screenshots`)."""

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from playwright.async_api import Page, async_playwright
from websockets.asyncio.client import ClientConnection

from server.chat.settings import save_chat_settings
from tests.browser.console import (
    ROOT,
    create_admin,
    ensure_console_built,
    keep_asking,
    launch_chromium,
    log_in,
    new_page,
    require_chromium,
    sign_up,
)
from tests.live_server import LiveServer, chat_frame, open_chat, recv_until, start_test_server
from tests.tiny_model import build_tiny_gpt2

OUT = ROOT / "admin_ui" / "screenshots"
USERS = [
    ("wx-lin", "林小雨"),
    ("wx-zhou", "周杰"),
    ("wx-chen", "陈晓明"),
    ("wx-wang", "王芳"),
    ("wx-li", "李雷"),
    ("wx-han", "韩梅梅"),
]
QUESTIONS = ["你好，今天天气怎么样？", "给我讲个笑话吧", "周末去哪里玩比较好？"]


async def chat_once(ws: ClientConnection, content: str, conversation_id: int | None) -> int:
    """Send one chat and wait for its reply; returns the conversation id."""
    await ws.send(chat_frame(content, conversation_id))
    frames = await recv_until(ws, "done", "error")
    start = next(f for f in frames if f["type"] == "start")
    conversation: int = start["conversation_id"]
    return conversation


async def seed(server: LiveServer, admin_token: str) -> int:
    """Users with conversations, a quota grant and a ban; returns the first user's id."""
    ids = []
    for index, (wid, nickname) in enumerate(USERS):
        token, user_id = sign_up(server, wid, nickname)
        ids.append(user_id)
        ws, _ = await open_chat(server, token)
        async with ws:
            conversation = None
            for question in QUESTIONS[: 1 + index % 3]:
                conversation = await chat_once(ws, question, conversation)
    headers = {"Authorization": f"Bearer {admin_token}"}
    base = server.url + "/api/admin/users"
    httpx.post(
        f"{base}/{ids[0]}/quota",
        json={"action": "grant", "amount": 50, "reason": "活动奖励"},
        headers=headers,
    ).raise_for_status()
    httpx.post(
        f"{base}/{ids[-1]}/ban", json={"reason": "发送垃圾信息"}, headers=headers
    ).raise_for_status()
    return ids[0]


@contextlib.asynccontextmanager
async def load(server: LiveServer, sockets: int) -> AsyncIterator[None]:
    """Chat users that keep asking for long replies, so the ops panel has queued and generating
    rows."""
    server.call(save_chat_settings({"max_new_tokens": 512}))
    stop = asyncio.Event()
    connections = []
    for n in range(sockets):
        token, _ = sign_up(server, f"load-{n}", f"压测用户{n}")
        connections.append((await open_chat(server, token))[0])
    tasks = [asyncio.create_task(keep_asking(ws, stop)) for ws in connections]
    try:
        yield
    finally:
        stop.set()
        for ws in connections:
            await ws.close()
        await asyncio.gather(*tasks)


async def shoot(page: Page, server: LiveServer, path: str, name: str, ready: str) -> None:
    await page.goto(server.url + "/admin" + path)
    await page.wait_for_selector(ready)
    await page.wait_for_load_state("networkidle")
    await page.screenshot(path=OUT / f"{name}.png", full_page=True)


async def take_all(server: LiveServer) -> None:
    admin_token = server.admin_login("operator")
    user_id = await seed(server, admin_token)
    password = create_admin(server, "admin")
    transcript = httpx.get(
        server.url + "/api/admin/conversations",
        params={"user_id": user_id},
        headers={"Authorization": f"Bearer {admin_token}"},
    ).json()["items"][0]["id"]
    OUT.mkdir(exist_ok=True)
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        page = await new_page(browser)
        await page.goto(server.url + "/admin/login")
        await page.wait_for_selector("[data-testid=login-submit]")
        await page.screenshot(path=OUT / "01-login.png")
        await log_in(page, server, "admin", password)
        await shoot(page, server, "/dashboard", "02-dashboard", "canvas")
        await shoot(page, server, "/users", "03-users", "[data-testid=users-table] .el-table__row")
        await shoot(page, server, f"/users/{user_id}", "04-user", "[data-testid=user-quota]")
        await page.get_by_test_id("quota-button").click()
        await page.get_by_test_id("quota-reason").fill("客服补偿")
        # The dialog fades in; shoot it once it has settled.
        await page.wait_for_timeout(600)
        await page.screenshot(path=OUT / "05-quota-dialog.png")
        await shoot(page, server, "/conversations", "06-conversations", ".el-table__row")
        await shoot(page, server, f"/conversations/{transcript}", "07-transcript", ".message")
        await shoot(page, server, "/settings", "08-settings", "[data-testid=settings-form]")
        await page.goto(server.url + "/admin/playground")
        await page.wait_for_selector("[data-testid=chat-status][data-status=open]")
        await page.get_by_test_id("chat-input").fill("你好，介绍一下你自己")
        await page.get_by_test_id("chat-send").click()
        await page.wait_for_selector("[data-testid=assistant-turn][data-state=done]")
        await page.screenshot(path=OUT / "09-playground.png")
        await shoot(page, server, "/audit", "10-audit", ".el-table__row")
        async with load(server, sockets=6):
            await page.goto(server.url + "/admin/ops")
            await page.wait_for_selector("[data-testid=ops-state]")
            # Let the charts gather some seconds of history.
            await asyncio.sleep(12)
            await page.screenshot(path=OUT / "11-ops.png", full_page=True)
        page_en = await new_page(browser, lang="en")
        await log_in(page_en, server, "admin", password)
        await shoot(page_en, server, "/users", "12-users-english", ".el-table__row")
        await browser.close()


def main() -> None:
    ensure_console_built()
    require_chromium()
    with tempfile.TemporaryDirectory(prefix="wxgpt-screenshots-") as tmp:
        model = build_tiny_gpt2(Path(tmp) / "model")
        server = start_test_server(
            model, Path(tmp) / "wxgpt.sqlite3", chat={"max_new_tokens": 48, "temperature": 0.9}
        )
        try:
            asyncio.run(take_all(server))
        finally:
            server.stop()
    print(f"screenshots written to {OUT}")


if __name__ == "__main__":
    main()
