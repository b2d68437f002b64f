"""A Starlette app served by uvicorn in a thread on a loopback port: the stand-ins for the
services wxgpt calls (an inference engine, WeChat's API, WeChat Pay) run on it."""

import threading
import time

import uvicorn
from starlette.applications import Starlette


class LoopbackApp:
    """`app` on 127.0.0.1:`port` (0: a free one) from `start` to `stop`."""

    def __init__(self, app: Starlette, port: int = 0) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> int:
        """Serve; returns the port once it listens."""
        self._thread.start()
        while not self._server.started:
            time.sleep(0.01)
        port: int = self._server.servers[0].sockets[0].getsockname()[1]
        return port

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
