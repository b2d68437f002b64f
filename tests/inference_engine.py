"""Inference servers on loopback for the remote engine's tests: the real `transformers serve`
in a subprocess, and a stand-in that answers what a test scripts (429, 503, set chunks)."""

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.loopback_app import LoopbackApp
from tests.pace import GATE_ENV, StepFile
from tests.serve_engine import MARK
from tests.server.test_cli import free_port

ENDED = re.compile(rf"{MARK} (aborted|ended) after (\d+) tokens")


class ServeProcess:
    """`transformers serve MODEL` on 127.0.0.1 (through tests.serve_engine, which logs how each
    generation ended); its output goes to `log_path`. Its forward passes wait on `gate`, open
    when it starts."""

    def __init__(self, model: Path, log_path: Path, port: int | None = None) -> None:
        self.model = model
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self.gate = StepFile(log_path.with_suffix(".gate"))

    def start(self, timeout: float = 180.0) -> "ServeProcess":
        """Start it and wait until /health answers 200."""
        command = [sys.executable, "-m", "tests.serve_engine", str(self.model)]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--device", "cpu"]
        # One thread: the machine is shared, and the test server generates beside it.
        self.gate = StepFile(self.gate.path)
        self.gate.open()
        env = {
            **os.environ,
            "OMP_NUM_THREADS": "1",
            "TRANSFORMERS_VERBOSITY": "info",
            GATE_ENV: str(self.gate.path),
        }
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=Path.cwd()
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"transformers serve exited:\n{self.log()[-3000:]}")
            try:
                if httpx.get(self.url.removesuffix("/v1") + "/health").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.kill()
        raise TimeoutError(f"transformers serve did not start:\n{self.log()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL, as a crashed engine."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def generations(self) -> list[tuple[str, int]]:
        """How each generation so far ended: ("ended" or "aborted", tokens)."""
        return [(how, int(tokens)) for how, tokens in ENDED.findall(self.log())]

    async def wait_for_generations(
        self, count: int, timeout: float = 120.0
    ) -> list[tuple[str, int]]:
        """The ends of the first `count` generations, once there are that many."""
        deadline = time.monotonic() + timeout
        while len(ends := self.generations()) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(ends)} generations ended:\n{self.log()[-3000:]}")
            await asyncio.sleep(0.05)
        return ends[:count]


@dataclass
class StandInEngine:
    """An OpenAI-compatible stand-in on loopback: `/health`, `/v1/models`, and chat
    completions answered with `status` (and `headers`) or, when 200, the `chunks` streamed,
    then `[DONE]`, or nothing more ever if `stall`. It records each request's headers and
    body, and sets `disconnected` when a client leaves a stream before its end."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[dict[str, Any]] = field(default_factory=list)
    stall: bool = False
    models: list[str] = field(default_factory=lambda: ["stand-in"])
    requests: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)
    disconnected: threading.Event = field(default_factory=threading.Event)
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __post_init__(self) -> None:
        app = Starlette(
            routes=[
                Route("/health", self._health),
                Route("/v1/models", self._models),
                Route("/v1/chat/completions", self._complete, methods=["POST"]),
            ]
        )
        self._served = LoopbackApp(app, self.port)

    def start(self) -> "StandInEngine":
        self._served.start()
        return self

    def stop(self) -> None:
        self._served.stop()

    async def _health(self, request: Request) -> Response:
        self.requests.append((dict(request.headers), {}))
        return JSONResponse({"status": "ok"})

    async def _models(self, request: Request) -> Response:
        self.requests.append((dict(request.headers), {}))
        data = [{"id": model, "object": "model"} for model in self.models]
        return JSONResponse({"object": "list", "data": data})

    async def _complete(self, request: Request) -> Response:
        self.requests.append((dict(request.headers), await request.json()))
        if self.status != 200:
            body = {"error": {"message": "too many requests", "code": self.status}}
            return JSONResponse(body, status_code=self.status, headers=self.headers)
        return StreamingResponse(self._stream(request), media_type="text/event-stream")

    async def _stream(self, request: Request) -> AsyncIterator[str]:
        finished = False
        try:
            # In one write: a client's timeout between chunks then only ever meets the stall.
            yield "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in self.chunks)
            if self.stall:
                # The body is read, so the next message is the client going away.
                while (await request.receive())["type"] != "http.disconnect":
                    pass
                return
            yield "data: [DONE]\n\n"
            finished = True
        finally:
            if not finished:
                self.disconnected.set()


def chat_chunk(
    content: str | None = None,
    finish_reason: str | None = None,
    usage: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """One chunk of a streamed chat completion, as vLLM sends them."""
    choices = (
        []
        if content is None and finish_reason is None
        else [
            {
                "index": 0,
                "delta": {"content": content} if content else {},
                "finish_reason": finish_reason,
            }
        ]
    )
    chunk: dict[str, Any] = {"object": "chat.completion.chunk", "choices": choices}
    if usage is not None:
        chunk["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1]}
    return chunk
