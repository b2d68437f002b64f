"""Size of /ws/ops frames with many idle chat sockets open, and the server's cost per push.

Starts wxgpt in-process (tiny test model, temporary SQLite file), opens N chat sockets,
then an ops panel socket, and prints the snapshot's size, the idle deltas' sizes, and how
long building one push takes on the server.

    PYTHONPATH=. .venv/bin/python bench/ops_deltas.py [--sockets 1000] [--deltas 5]
"""

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from server.config import Settings
from server.ops.presence import Presence, RowDiff
from tests.live_server import LiveServer, open_chat
from tests.tiny_model import build_tiny_gpt2


def push_cost_ms(presence: Presence, repeats: int = 20) -> float:
    """Mean milliseconds to build the rows and diff them, as one /ws/ops tick does."""
    diff = RowDiff()
    diff.diff(presence.sockets(), [])
    started = time.perf_counter()
    for _ in range(repeats):
        diff.diff(presence.sockets(), [])
    return (time.perf_counter() - started) / repeats * 1000


async def measure(server: LiveServer, sockets: int, deltas: int) -> None:
    admin = server.admin_login()
    # One user with many sockets: opening them is what takes time, not what is measured.
    token = server.login("idle")
    chats = []
    started = time.perf_counter()
    for _ in range(sockets):
        chats.append((await open_chat(server, token))[0])
    print(f"opened {sockets} chat sockets in {time.perf_counter() - started:.1f} s")
    ops = await server.connect(admin, "/ws/ops")
    snapshot = await ops.recv()
    assert len(json.loads(snapshot)["sockets"]) == sockets
    print(f"snapshot frame: {len(snapshot.encode()):>8} bytes ({sockets} rows)")
    for _ in range(deltas):
        delta = await ops.recv()
        upserts = len(json.loads(delta)["upsert"])
        print(f"idle delta:     {len(delta.encode()):>8} bytes ({upserts} rows sent again)")
    presence: Presence = server.app.state.presence
    print(f"server cost of one idle push: {push_cost_ms(presence):.2f} ms")
    started = time.perf_counter()
    server.call(presence.snapshot())
    print(f"server cost of a snapshot: {(time.perf_counter() - started) * 1000:.2f} ms")
    await ops.close()
    for chat in chats:
        await chat.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--deltas", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        model = build_tiny_gpt2(Path(folder) / "model")
        settings = Settings(
            _env_file=None,
            db_url=f"sqlite://{folder}/bench.sqlite3",
            model=str(model),
            dev_login=True,
            # A thousand sockets of one user from one address: no caps here.
            max_sockets_per_user=10**6,
            max_sockets_per_address=10**6,
        )
        server = LiveServer(settings).start()
        try:
            asyncio.run(measure(server, args.sockets, args.deltas))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
