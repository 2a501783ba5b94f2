"""Whether `serve` and `ui` can listen where they are told, checked before anything starts."""

from __future__ import annotations

import socket

from sweep.spec import UsageError


def check_listen(host: str, port: int) -> None:
    """UsageError (one line, exit 2) unless `host:port` is a valid address this process can bind now."""
    if not 1 <= port <= 65535:
        raise UsageError(f"--port {port} is out of range; use 1 to 65535 (e.g. --port 5000)")
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn and gunicorn do
        try:
            probe.bind((host, port))
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise UsageError(f"cannot listen on {host}:{port} ({reason}); pick another --port or --host") from None
