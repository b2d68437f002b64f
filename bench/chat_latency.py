"""Time to first token and tokens/s of replies through /ws/chat on a real `wxgpt serve`.

Starts the server on a free loopback port with a temporary SQLite file, sets greedy
decoding, asks a few questions over one socket and prints one row per reply.

    .venv/bin/python bench/chat_latency.py [--model DIR] [--max-new-tokens N]
"""

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import httpx
from websockets.asyncio.client import connect

QUESTIONS = [
    "What is the capital of France?",
    "Name three colours of the rainbow.",
    "Write one sentence about the sea.",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def ask(url: str, token: str, question: str) -> dict[str, float]:
    async with connect(
        url.replace("http", "ws") + "/ws/chat",
        additional_headers={"Authorization": f"Bearer {token}"},
    ) as ws:
        await ws.recv()
        sent = time.perf_counter()
        frame = {
            "type": "chat",
            "conversation_id": None,
            "content": question,
            "client_msg_id": str(uuid.uuid4()),
        }
        await ws.send(json.dumps(frame))
        first = None
        while True:
            reply = json.loads(await ws.recv())
            if reply["type"] == "delta" and first is None:
                first = time.perf_counter()
            if reply["type"] in ("done", "error"):
                break
        ended = time.perf_counter()
    assert reply["type"] == "done", reply
    assert first is not None
    tokens = reply["usage"]["completion_tokens"]
    return {
        "ttft_s": first - sent,
        "tokens": tokens,
        "tokens_per_s": (tokens - 1) / (ended - first) if ended > first else float("nan"),
        "prompt_tokens": reply["usage"]["prompt_tokens"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model folder (default: the bundled default model)")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="wxgpt-bench-")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "WXGPT_DB_URL": f"sqlite://{workdir}/bench.sqlite3",
        "WXGPT_DEV_LOGIN": "1",
    }
    wxgpt = [sys.executable, "-m", "server"]
    subprocess.run([*wxgpt, "migrate"], env=env, check=True, capture_output=True)
    settings = [f"max_new_tokens={args.max_new_tokens}", "temperature=0", "repetition_penalty=1.1"]
    subprocess.run([*wxgpt, "settings", *settings], env=env, check=True, capture_output=True)
    serve_args = ["serve", "--port", str(port), *(["--model", args.model] if args.model else [])]
    server = subprocess.Popen([*wxgpt, *serve_args], env=env, stderr=subprocess.DEVNULL)
    try:
        print(f"server ready in {wait_ready(url, server):.1f} s")
        token = httpx.post(url + "/api/auth/login", json={"wid": "bench"}).json()["token"]
        rows = [asyncio.run(ask(url, token, question)) for question in QUESTIONS]
    finally:
        server.terminate()
        server.wait()
    print(f"{'prompt tok':>10} {'reply tok':>9} {'first token s':>13} {'tokens/s':>8}")
    for row in rows:
        tokens, ttft, speed = row["tokens"], row["ttft_s"], row["tokens_per_s"]
        print(f"{row['prompt_tokens']:>10} {tokens:>9} {ttft:>13.2f} {speed:>8.1f}")
    print(
        f"median: first token {statistics.median(r['ttft_s'] for r in rows):.2f} s, "
        f"{statistics.median(r['tokens_per_s'] for r in rows):.1f} tokens/s"
    )


def wait_ready(url: str, server: subprocess.Popen[bytes]) -> float:
    """Seconds until /readyz answers 200 (the model loaded)."""
    started = time.perf_counter()
    while server.poll() is None:
        try:
            if httpx.get(url + "/readyz").status_code == 200:
                return time.perf_counter() - started
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("wxgpt serve exited before it was ready")


if __name__ == "__main__":
    main()
