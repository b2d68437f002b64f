from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.browser.console import (
    create_admin,
    ensure_console_built,
    launch_chromium,
    log_in,
    new_page,
    require_chromium,
)
from tests.live_server import LiveServer, start_test_server


@pytest.fixture(scope="session", autouse=True)
def _console_and_browser() -> None:
    """The built console (built here when missing) and Debian's Chromium; without them the
    tests fail with what to run, not a traceback."""
    problem = None
    try:
        ensure_console_built()
        require_chromium()
    except RuntimeError as exc:
        problem = str(exc)
    if problem is not None:
        pytest.fail(problem, pytrace=False)


@pytest.fixture
def server(tiny_model: Path, tmp_path: Path) -> Iterator[LiveServer]:
    server = start_test_server(tiny_model, tmp_path / "wxgpt.sqlite3")
    yield server
    server.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        yield browser
        await browser.close()


@pytest.fixture
async def page(browser: Browser, server: LiveServer) -> Page:
    """A page logged in to the console as the admin "root"."""
    page = await new_page(browser)
    await log_in(page, server, "root", create_admin(server, "root"))
    return page
