"""The inference server's health as the remote engine sees it: probed in a thread every few
seconds (never once per reply), and which model it serves, learnt whenever it comes up."""

import logging
import threading
from collections.abc import Callable

import httpx

from generation.engines.base import EngineHealth
from generation.engines.openai_api import (
    ServedModel,
    ServerAddress,
    failure_of_response,
    pick_model,
)
from generation.errors import GenerationError

logger = logging.getLogger(__name__)

PROBE_THREAD = "wxgpt-engine-health"


# Set while the current thread probes; httpx logs in the thread that sends.
_probing = threading.local()


class _QuietProbes(logging.Filter):
    """Drops httpx's line per request for the probes: one every few seconds would drown the
    log. Replies' requests still show."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_probing, "active", False)


logging.getLogger("httpx").addFilter(_QuietProbes())


class HealthMonitor:
    """Probes `/health` (or `/v1/models` where there is none) every `interval_s` seconds."""

    def __init__(
        self,
        address: ServerAddress,
        *,
        model: str | None,
        interval_s: float,
        timeout: httpx.Timeout,
        on_served: Callable[[ServedModel], None],
    ) -> None:
        self.served: ServedModel | None = None
        self._address = address
        self._model = model
        self._interval_s = interval_s
        self._on_served = on_served
        self._health = EngineHealth(False, "the inference engine has not answered yet")
        self._health_url: str | None = address.root + "/health"
        self._client = httpx.Client(headers=address.headers, timeout=timeout)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=PROBE_THREAD, daemon=True)

    @property
    def health(self) -> EngineHealth:
        """The latest verdict."""
        return self._health

    def start(self) -> None:
        """Probe once now (blocking), then keep probing in the thread."""
        self.probe()
        self._thread.start()

    def close(self) -> None:
        """Stop probing."""
        self._stop.set()
        if not self._thread.is_alive():
            self._client.close()

    def failed(self, reason: str) -> None:
        """A reply found the server unreachable: say so now rather than at the next probe."""
        self._set(EngineHealth(False, reason))

    def probe(self) -> None:
        """Ask the server once and record the verdict."""
        _probing.active = True
        try:
            if self.served is None:
                served = pick_model(self._get(self._address.base + "/models").json(), self._model)
                self.served = served
                self._on_served(served)
            else:
                self._check()
        except httpx.HTTPError as exc:
            self._down(f"the inference engine is unreachable: {_cause(exc)}")
        except (GenerationError, ValueError) as exc:
            self._down(str(exc))
        else:
            self._set(EngineHealth(True))
        finally:
            _probing.active = False

    def _down(self, reason: str) -> None:
        # What comes back up may serve another model: ask again then.
        self.served = None
        self._set(EngineHealth(False, reason))

    def _run(self) -> None:
        try:
            while not self._stop.wait(self._interval_s):
                self.probe()
        except BaseException:
            logger.exception("the inference engine's health monitor stopped")
            self._health = EngineHealth(False, "the inference engine's health monitor stopped")
            raise
        finally:
            self._client.close()

    def _check(self) -> None:
        if self._health_url is not None:
            response = self._client.get(self._health_url)
            if response.status_code not in (404, 405):
                _raise_for_status(response)
                return
            # No /health here (an OpenAI proxy, say): the model list tells as much.
            self._health_url = None
        self._get(self._address.base + "/models")

    def _get(self, url: str) -> httpx.Response:
        response = self._client.get(url)
        _raise_for_status(response)
        return response

    def _set(self, health: EngineHealth) -> None:
        before, self._health = self._health, health
        if health == before:
            return
        model = self.served.id if self.served else "unknown"
        if health.ready:
            logger.info("inference engine at %s is up (model %s)", self._address.origin, model)
        else:
            logger.warning(
                "inference engine at %s is not ready: %s", self._address.origin, health.reason
            )


def _raise_for_status(response: httpx.Response) -> None:
    if response.status_code != 200:
        raise failure_of_response(response, response.text)


def _cause(exc: httpx.HTTPError) -> str:
    return str(exc) or type(exc).__name__
