"""The demo's "is a demo already running?" check (no broker needed)."""

from __future__ import annotations

import socket

from streams.commands.demo import _port_free


def test_a_listening_port_is_taken_but_one_in_time_wait_is_free() -> None:
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp binds
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert not _port_free(port)  # a demo's page or metrics: the second demo must stop
        client = socket.create_connection(("127.0.0.1", port))
        conn, _ = server.accept()
        conn.close()  # the server closes first: its side waits in TIME_WAIT for 60 s
        client.close()
    # The demo just stopped (Ctrl-C, then `make demo` again): nothing listens any more; the
    # last connections' TIME_WAIT must not read as "a demo is already running".
    assert _port_free(port)
