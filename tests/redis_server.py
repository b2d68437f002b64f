"""Redis for tests: the machine's own at WXGPT_TEST_REDIS_URL, or a private one the test
starts (and can stop and start again) on a free loopback port."""

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import redis.asyncio as aioredis

REDIS_URL = os.environ.get("WXGPT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def unique_prefix() -> str:
    """A key prefix of one test's own, so tests never see each other's keys."""
    return f"wxgpt-test-{uuid.uuid4().hex[:10]}"


async def require_redis(url: str = REDIS_URL) -> None:
    """Skip, naming the URL, when no Redis answers there."""
    client = aioredis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        await client.ping()
    except (OSError, aioredis.RedisError) as exc:
        pytest.skip(f"no Redis answers at {url} ({exc}); set WXGPT_TEST_REDIS_URL")
    finally:
        await client.aclose()


@asynccontextmanager
async def prefixed(url: str = REDIS_URL) -> AsyncIterator[str]:
    """A fresh key prefix on the shared Redis, its keys deleted afterwards."""
    await require_redis(url)
    prefix = unique_prefix()
    try:
        yield prefix
    finally:
        client = aioredis.Redis.from_url(url)
        try:
            keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()


class PrivateRedis:
    """A redis-server of the test's own on a free port, without persistence."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed (apt-get install redis-server)")
        self._binary = binary
        self._folder = folder
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> "PrivateRedis":
        self._process = subprocess.Popen(
            [
                self._binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self._folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("the private redis-server did not start")

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None
