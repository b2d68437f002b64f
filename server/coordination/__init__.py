"""State the replicas of one wxgpt set-up share: chosen by URL, memory (default) or Redis."""

from urllib.parse import urlsplit

from server.coordination.base import Coordinator, new_replica_id
from server.coordination.memory import MemoryCoordinator


def coordinator_for(
    url: str | None, *, replica_id: str | None = None, lease_seconds: float, prefix: str
) -> Coordinator:
    """The backend for `url`: None or memory:// keeps state in this process; redis:// (or
    rediss://) shares it. Raises ValueError for any other scheme."""
    replica = replica_id or new_replica_id()
    scheme = urlsplit(url).scheme if url else "memory"
    if scheme == "memory":
        return MemoryCoordinator(replica, lease_seconds)
    if scheme in ("redis", "rediss", "unix"):
        # Imported here: the redis client is only needed where it is used.
        from server.coordination.redis import RedisCoordinator

        assert url is not None
        return RedisCoordinator(replica, lease_seconds, url, prefix)
    raise ValueError(f"WXGPT_REDIS_URL must be a redis:// or rediss:// URL, not {url!r}")
