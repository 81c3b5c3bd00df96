"""Ports for server processes started by the tests (safe under pytest-xdist).

In-process servers (``adapters.grpc.server.running``) listen on port 0 and report the port the
kernel gave them: nothing to do. A server started as its own process (``onestop serve``) is told
a port on its command line, and ``serve --processes N`` needs one port all its children share,
so port 0 cannot be used there: ``free_port`` asks the kernel for a free one, and between that
question and the server's bind another process (another xdist worker, another test run on the
machine) may take it. ``start_server`` then sees the server refuse the address at once
("cannot listen on ...") and starts it again on another port.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def free_port() -> int:
    """A port nothing listens on now (the kernel's pick for port 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _taken(text: str) -> bool:
    return "cannot listen on" in text and (
        "in use" in text or "bind" in text.lower() or "listen" in text.lower()
    )


def start_server(
    popen: Callable[[int], subprocess.Popen], log: Path, *, tries: int = 5, timeout: float = 180
) -> tuple[subprocess.Popen, int]:
    """``popen(port)`` on a free port; (process, port) once the server listens (its log says
    "listening on"), or once it has stopped for a reason other than a taken port (the caller's
    own checks then report it). A server that finds its port taken is started again on another
    one, up to ``tries`` times. ``log`` is the file the process writes its output to (it may
    already hold earlier runs: only what this start adds is read)."""
    for attempt in range(tries):
        start = log.stat().st_size if log.exists() else 0
        port = free_port()
        proc = popen(port)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rc = proc.poll()
            text = _new_text(log, start)
            if "listening on" in text:
                return proc, port
            if rc is not None:
                if _taken(text) and attempt + 1 < tries:
                    break  # taken between free_port and the bind: another port
                return proc, port
            time.sleep(0.05)
        else:
            return proc, port  # not listening yet: the caller's wait_serving decides
    raise AssertionError("unreachable")


def _new_text(log: Path, start: int) -> str:
    try:
        with log.open("rb") as f:
            f.seek(start)
            return f.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
