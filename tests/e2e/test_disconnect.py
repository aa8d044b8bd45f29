"""A client that goes away mid-upload leaves nothing behind, and the server carries on.

Raw sockets, because no real client can be told to die halfway through a body.
"""

from __future__ import annotations

import base64
import os
import socket
import struct
import time
import uuid

import pytest
import requests

import distfactory
from clients import start_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("disconnect-server"))
    yield srv
    srv.stop()


def multipart(fields: dict, filename: str, content: bytes) -> tuple[str, bytes]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="content"; '
        f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
        + content + f"\r\n--{boundary}--\r\n".encode()
    )
    return boundary, b"".join(parts)


def stored_files(server) -> list[str]:
    """Everything under the storage root, temporary files included."""
    root = server.storage_dir
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) \
        if root.exists() else []


def send_part_and_vanish(server, wheel, name, sent_fraction: float, reset: bool):
    boundary, body = multipart(distfactory.upload_fields(wheel, name, "1.0"), wheel.name,
                               wheel.read_bytes())
    user, password = server.auth
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    head = (
        f"POST /legacy/ HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Authorization: Basic {token}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        sock.sendall(head + body[: int(len(body) * sent_fraction)])
        if reset:
            # SO_LINGER 0: close with a RST, as a killed process or a dropped network does.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        sock.close()


@pytest.mark.parametrize("size,sent_fraction,reset", [
    # Small enough for the server to buffer in memory; the client leaves with a FIN.
    (64 * 1024, 0.5, False),
    # Larger than the in-memory buffer, so the body was being spooled to disk; RST.
    (4 * 1024 * 1024, 0.6, True),
    # Everything but the closing boundary.
    (256 * 1024, 0.9999, False),
], ids=["small-fin", "spooled-rst", "almost-all"])
def test_disconnect_mid_upload_stores_nothing(server, tmp_path, size, sent_fraction, reset):
    name = f"gone-{size}-{int(sent_fraction * 100)}"
    wheel = distfactory.make_wheel(tmp_path, name, "1.0", payload_size=size)
    before = stored_files(server)

    send_part_and_vanish(server, wheel, name, sent_fraction, reset)
    time.sleep(0.5)  # give a careless server the time to write what it had

    assert requests.get(f"{server.url}/simple/{name}/", timeout=10).status_code == 404
    assert stored_files(server) == before

    # Still serving, and the same file uploads cleanly afterwards.
    assert requests.get(f"{server.url}/_health", timeout=10).ok
    server.upload(wheel, name, "1.0", timeout=60)
    page = requests.get(f"{server.url}/simple/{name}/", timeout=10)
    assert page.status_code == 200 and wheel.name in page.text
    assert len(stored_files(server)) > len(before)
    assert not [p for p in stored_files(server) if os.path.basename(p).startswith(".tmp")]
    assert "Traceback" not in server.log
