"""Whether a `wxgpt serve` started by a test is up: ready, and the one the test started."""

import httpx


def ready_as(url: str, replica_id: str) -> bool:
    """Whether the server at `url` answers /readyz with 200 as replica `replica_id`.

    The test picks a free port before its server starts, and loading the model takes seconds
    before the server binds it: another test's server can take that port meanwhile, and its
    200 would pass for the new server's (a test then found its own database unmigrated).
    """
    try:
        response = httpx.get(url + "/readyz")
    except httpx.TransportError:
        return False
    return response.status_code == 200 and response.json().get("replica") == replica_id
