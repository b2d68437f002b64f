"""Log lines that say which socket and reply they belong to; JSON lines on request."""

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

# Tasks copy the context they are created in, so a reply task inherits its socket's id.
socket_id: ContextVar[str | None] = ContextVar("socket_id", default=None)
reply_id: ContextVar[int | None] = ContextVar("reply_id", default=None)
# The process's replica id: one per process, so not a context variable (uvicorn's tasks do
# not start from the app's context).
_replica: dict[str, str | None] = {"id": None}


def set_replica(replica_id: str) -> None:
    """Name this process's replica in every log line from now on."""
    _replica["id"] = replica_id


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(context)s: %(message)s"
# Credentials a client may put in a URL; uvicorn logs URLs with their query strings.
_SECRET_PARAMS = re.compile(r"([?&](?:token|ticket|access_token|password)=)[^&#\s\"]*", re.I)
# uvicorn's loggers that write request URLs: the access log, and WebSocket handshakes.
URL_LOGGERS = ("uvicorn.access", "uvicorn.error")


class ContextFilter(logging.Filter):
    """Puts the current socket and reply ids on every record passing the handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        socket, reply, replica = socket_id.get(), reply_id.get(), _replica["id"]
        tags = [f"replica={replica}"] if replica else []
        if socket:
            tags.append(f"socket={socket}")
        if reply is not None:
            tags.append(f"reply={reply}")
        context = f" [{' '.join(tags)}]" if tags else ""
        record.__dict__.update(
            replica_id=replica, socket_id=socket, reply_id=reply, context=context
        )
        return True


def redact(text: str) -> str:
    """`text` with the values of credential query parameters replaced by `[redacted]`."""
    return _SECRET_PARAMS.sub(r"\1[redacted]", text)


class RedactUrls(logging.Filter):
    """Blanks credentials out of the URLs in a record (its arguments keep their shape, which
    uvicorn's own access formatter relies on)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


_redact_urls = RedactUrls()


def redact_url_logs() -> None:
    """Install RedactUrls on uvicorn's loggers (once, however often called)."""
    for name in URL_LOGGERS:
        logging.getLogger(name).addFilter(_redact_urls)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, replica, socket and reply ids."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("replica_id", "socket_id", "reply_id"):
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def log_handler(*, json_lines: bool, stream: TextIO | None = None) -> logging.Handler:
    """A handler (to stderr unless told) that tags records with their socket and reply."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(TEXT_FORMAT))
    return handler


def configure_logging(level: int, *, json_lines: bool) -> None:
    """Send every logger's records (uvicorn's too) through one tagged stderr handler."""
    logging.basicConfig(level=level, handlers=[log_handler(json_lines=json_lines)], force=True)
