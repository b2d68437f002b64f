"""`wxgpt chat`: a terminal client that streams replies from a running wxgpt server."""

import asyncio
import json
import sys
import uuid
from dataclasses import dataclass
from typing import Any, TextIO

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed


class ChatClientError(Exception):
    """The server refused us or went away; the message says why."""


@dataclass
class ChatOptions:
    """Where to connect and as whom."""

    url: str = "http://127.0.0.1:8000"
    token: str | None = None
    wid: str = "cli"
    conversation_id: int | None = None


async def login(url: str, wid: str) -> str:
    """Get a token with the development login (the server needs WXGPT_DEV_LOGIN=1)."""
    async with httpx.AsyncClient(timeout=30.0) as client:
        try:
            response = await client.post(f"{url.rstrip('/')}/api/auth/login", json={"wid": wid})
        except httpx.HTTPError as exc:
            raise ChatClientError(f"cannot reach {url}: {exc}") from None
    body = response.json()
    if response.status_code != 200:
        raise ChatClientError(f"login refused: {body.get('error', {}).get('message', body)}")
    token: str = body["token"]
    return token


def socket_url(url: str) -> str:
    """The /ws/chat address of a server given by its http(s) address."""
    base = url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base.removeprefix("https://") + "/ws/chat"
    return "ws://" + base.removeprefix("http://") + "/ws/chat"


async def ask(
    ws: ClientConnection, content: str, conversation_id: int | None, out: TextIO
) -> dict[str, Any]:
    """Send one message and print the reply as it streams; returns the `done` frame."""
    await ws.send(
        json.dumps(
            {
                "type": "chat",
                "conversation_id": conversation_id,
                "content": content,
                "client_msg_id": str(uuid.uuid4()),
            }
        )
    )
    while True:
        frame = json.loads(await ws.recv())
        kind = frame.get("type")
        if kind == "delta":
            out.write(frame["text"])
            out.flush()
        elif kind == "queued":
            print(f"[waiting for the model: place {frame['position']} in line]", file=sys.stderr)
        elif kind == "start":
            conversation_id = frame["conversation_id"]
        elif kind == "done":
            out.write("\n")
            out.flush()
            return {**frame, "conversation_id": conversation_id}
        elif kind == "error":
            raise ChatClientError(f"{frame['code']}: {frame['message']}")


async def run_chat(options: ChatOptions, messages: list[str], out: TextIO = sys.stdout) -> None:
    """Send each message in turn in one conversation; with none, read lines from stdin."""
    token = options.token or await login(options.url, options.wid)
    try:
        async with connect(
            socket_url(options.url), additional_headers={"Authorization": f"Bearer {token}"}
        ) as ws:
            ready = json.loads(await ws.recv())
            if ready.get("type") != "ready":
                raise ChatClientError(f"unexpected first frame: {ready}")
            conversation_id = options.conversation_id
            interactive = not messages
            while True:
                if interactive:
                    line = await asyncio.to_thread(_prompt_line)
                    if line is None:
                        return
                    messages = [line]
                if not messages:
                    return
                done = await ask(ws, messages.pop(0), conversation_id, out)
                conversation_id = done["conversation_id"]
                tokens = done["usage"]["completion_tokens"]
                print(
                    f"[conversation {conversation_id} · {tokens} tokens · "
                    f"{done['finish_reason']} · quota left {done['quota']}]",
                    file=sys.stderr,
                )
    except ConnectionClosed as exc:
        raise ChatClientError(
            f"the server closed the socket ({exc.rcvd.code if exc.rcvd else 'no code'}: "
            f"{exc.rcvd.reason if exc.rcvd else ''})"
        ) from None
    except OSError as exc:
        raise ChatClientError(f"cannot reach {options.url}: {exc}") from None


def _prompt_line() -> str | None:
    try:
        line = input("> ")
    except EOFError:
        return None
    return line if line.strip() else _prompt_line()
