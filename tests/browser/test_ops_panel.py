"""The ops panel in Debian's Chromium against a real server: chat sockets opened by the test
appear live, change state as they chat, can be filtered and kicked; the panel reconnects by
itself when the server restarts."""

import asyncio
import contextlib
from pathlib import Path

import pytest
from playwright.async_api import Locator, Page, expect
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from server.chat.settings import save_chat_settings
from tests.browser.console import keep_asking, sign_up
from tests.live_server import LiveServer, open_chat
from tests.pace import forward_gate

CHATTY = ["ops-a", "ops-b", "ops-c"]
LIVE = 15_000  # ms: a few of the panel's one-second updates


def row(page: Page, wid: str) -> Locator:
    return page.get_by_test_id("ops-table").locator(
        "tr", has=page.get_by_test_id(f"ops-row-dev:{wid}")
    )


async def test_ops_panel_follows_sockets_live_kicks_one_and_reconnects_after_a_restart(
    page: Page, server: LiveServer, tmp_path: Path
) -> None:
    # More sockets than generation slots, and the model held: two generate, one waits.
    server.call(save_chat_settings({"max_new_tokens": 512}))
    await page.get_by_test_id("menu-ops").click()
    await expect(page.get_by_test_id("ops-live")).to_be_visible()

    sockets: dict[str, ClientConnection] = {}
    for wid in [*CHATTY, "ops-idle"]:
        token, _ = sign_up(server, wid, wid)
        sockets[wid], _ = await open_chat(server, token)
    for wid in sockets:
        await expect(row(page, wid)).to_be_visible(timeout=LIVE)
    await expect(row(page, "ops-idle").get_by_test_id("ops-state")).to_have_attribute(
        "data-state", "idle"
    )

    with forward_gate(tmp_path / "gate"):
        stop = asyncio.Event()
        chatting = [asyncio.create_task(keep_asking(sockets[wid], stop)) for wid in CHATTY]
        try:
            states = page.get_by_test_id("ops-state")
            await expect(states.and_(page.locator("[data-state=generating]")).first).to_be_visible(
                timeout=LIVE
            )
            await expect(states.and_(page.locator("[data-state=queued]")).first).to_be_visible(
                timeout=LIVE
            )

            await page.get_by_test_id("ops-filter-idle").click()
            await expect(row(page, "ops-idle")).to_be_visible()
            await expect(states.and_(page.locator(":not([data-state=idle])"))).to_have_count(0)
            await page.get_by_test_id("ops-filter-all").click()

            await row(page, "ops-idle").get_by_test_id("ops-disconnect").click()
            await page.get_by_role("button", name="确定").click()
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(sockets["ops-idle"].recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4000
            await expect(row(page, "ops-idle")).to_have_count(0, timeout=LIVE)
            for wid in CHATTY:
                await expect(row(page, wid)).to_be_visible()
        finally:
            stop.set()
            for ws in sockets.values():
                await ws.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*chatting), 30)

    server.stop()
    await expect(page.get_by_test_id("ops-reconnecting")).to_be_visible()
    restarted = LiveServer(server.settings, port=server.port).start()
    try:
        await expect(page.get_by_test_id("ops-live")).to_be_visible(timeout=LIVE)
        await expect(page.get_by_test_id("ops-table")).to_contain_text("没有打开的连接")
    finally:
        restarted.stop()
