"""Request bodies: JSON only (415 otherwise), and refused with 413 as soon as they pass the size
limit, without the server ever reading one whole. Raw sockets, so that the test decides how
much of the body is sent and when."""

import socket

import httpx
import pytest

from tests.live_server import LiveServer, error_of
from tests.server.conftest import ServerFactory

LIMIT = 4096


def _start_login(server: LiveServer, length_header: str) -> socket.socket:
    """A connection that has sent the head of a JSON login request, and no body yet."""
    conn = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    conn.sendall(
        "POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"{length_header}\r\n\r\n".encode()
    )
    return conn


def _read_response(conn: socket.socket) -> bytes:
    """The server's answer: its head and as much body as its Content-Length says."""
    data = b""
    while b"\r\n\r\n" not in data and (chunk := conn.recv(65536)):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.lower().split(b"\r\n")
            if line.startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length and (chunk := conn.recv(65536)):
        body += chunk
    return head + b"\r\n\r\n" + body


def test_a_declared_oversized_body_is_refused_before_it_is_sent(
    start_server: ServerFactory,
) -> None:
    server = start_server(max_body_bytes=LIMIT)
    conn = _start_login(server, f"Content-Length: {100 * 1024 * 1024}")
    # Not one byte of the 100 MB body is sent: the answer must come all the same.
    answer = _read_response(conn)
    conn.close()
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert f"limit of {LIMIT} bytes".encode() in answer


def test_a_streamed_oversized_body_is_refused_once_it_passes_the_limit(
    start_server: ServerFactory,
) -> None:
    server = start_server(max_body_bytes=LIMIT)
    conn = _start_login(server, "Transfer-Encoding: chunked")
    chunk = b"x" * 1024
    # Twice the limit, and the body never ends: an answer now means the server stopped
    # reading at the limit instead of waiting for the whole body.
    for _ in range(2 * LIMIT // len(chunk)):
        conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    answer = _read_response(conn)
    conn.close()
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]


def test_a_body_within_the_limit_is_served(start_server: ServerFactory) -> None:
    server = start_server(max_body_bytes=LIMIT)
    response = httpx.post(
        server.url + "/api/auth/login", json={"wid": "small", "nickname": "n" * 60}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None]
)
def test_a_body_that_is_not_json_is_415(server: LiveServer, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = httpx.post(
        server.url + "/api/auth/login", content=b'{"wid": "plain"}', headers=headers
    )
    status, code, message = error_of(response)
    assert (status, code) == (415, "unsupported_media_type")
    assert "application/json" in message


def test_json_with_a_charset_is_json(server: LiveServer) -> None:
    response = httpx.post(
        server.url + "/api/auth/login",
        content=b'{"wid": "charset"}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200


def test_invalid_json_is_400(server: LiveServer) -> None:
    response = httpx.post(
        server.url + "/api/auth/login",
        content=b"{oops",
        headers={"Content-Type": "application/json"},
    )
    status, code, message = error_of(response)
    assert (status, code) == (400, "bad_request") and message.startswith("not valid JSON")
