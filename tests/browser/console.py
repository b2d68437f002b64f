"""Driving the admin console in Debian's Chromium with Playwright, shared by the browser tests
and the screenshot command."""

import asyncio
import contextlib
import subprocess
from pathlib import Path

import httpx
from playwright.async_api import Browser, Page, Playwright
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from storage import admins
from storage.models import AdminRole
from tests.live_server import LiveServer, chat_frame, recv_until

ROOT = Path(__file__).resolve().parents[2]
BUILT = ROOT / "admin_ui" / "dist" / "index.html"
CHROMIUM = Path("/usr/bin/chromium")
# Headless in a container: no sandbox, no GPU, and nothing that calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1440, "height": 900}
LANG_KEY = "wxgpt.admin.lang"


def ensure_console_built() -> None:
    """Run `make ui`, which builds admin_ui/dist when it is missing or older than its sources;
    fail saying why when it cannot (it needs node and npm)."""
    result = subprocess.run(["make", "--silent", "ui"], cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0 or not BUILT.is_file():
        raise RuntimeError(
            "the admin console could not be built with `make ui` (needs node and npm):\n"
            + result.stdout[-2000:]
            + result.stderr[-2000:]
        )


def require_chromium() -> None:
    """Fail with the fix when Debian's Chromium is not installed."""
    if not CHROMIUM.is_file():
        raise RuntimeError(
            f"{CHROMIUM} is missing: run `make system-packages` as root, or"
            " `sudo apt-get install -y --no-install-recommends chromium fonts-noto-cjk`"
        )


async def launch_chromium(playwright: Playwright) -> Browser:
    """Debian's Chromium, headless; Playwright's own browser downloads are never used."""
    return await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


async def new_page(browser: Browser, lang: str = "zh-CN") -> Page:
    """A page in a fresh context (no cookies), with the console's language preset."""
    context = await browser.new_context(viewport=VIEWPORT, locale=lang)
    # Only a first visit gets the preset: the console's own toggle must be what a reload keeps.
    await context.add_init_script(
        f"localStorage.getItem('{LANG_KEY}') || localStorage.setItem('{LANG_KEY}', '{lang}')"
    )
    return await context.new_page()


def create_admin(server: LiveServer, username: str, role: str = "admin") -> str:
    """Create an admin account through storage; returns its password."""
    password = f"password-{username}"
    server.call(admins.create_admin(username, password, AdminRole(role)))
    return password


async def fill_login(page: Page, username: str, password: str) -> None:
    """Fill and send the login form on the page now shown."""
    await page.get_by_test_id("login-username").fill(username)
    await page.get_by_test_id("login-password").fill(password)
    await page.get_by_test_id("login-submit").click()


async def log_in(page: Page, server: LiveServer, username: str, password: str) -> None:
    """Open the login page, log in and wait for the dashboard."""
    await page.goto(server.url + "/admin/login")
    await fill_login(page, username, password)
    await page.wait_for_url("**/admin/dashboard")


async def send_in_playground(page: Page, content: str) -> None:
    """Type a message into the playground and send it."""
    await page.get_by_test_id("chat-input").fill(content)
    await page.get_by_test_id("chat-send").click()


def sign_up(server: LiveServer, wid: str, nickname: str) -> tuple[str, int]:
    """A mini-program user logged in through the dev login: their chat token and id."""
    response = httpx.post(server.url + "/api/auth/login", json={"wid": wid, "nickname": nickname})
    response.raise_for_status()
    body = response.json()
    return body["token"], body["user"]["id"]


async def keep_asking(ws: ClientConnection, stop: asyncio.Event) -> None:
    """Chat on `ws`, one reply after another, until `stop` is set or the socket closes."""
    with contextlib.suppress(ConnectionClosed):
        while not stop.is_set():
            await ws.send(chat_frame("请写一篇长一点的文章"))
            await recv_until(ws, "done", "error")
