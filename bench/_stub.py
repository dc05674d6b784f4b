"""Helpers shared by the hosted-backend benchmarks (not a benchmark itself).

* :class:`StubProcess` runs ``tests/support/stub_openai.py`` (the loopback OpenAI-compatible
  server) in its own process, as ``python -m tests.support.stub_openai`` would, reads its base URL
  from its first line of output and, on exit, how many requests it served. The stub competes with
  the client for the machine's CPU cores, so it also reports the stub's own CPU time.
* :func:`write_classification_dataset` writes a synthetic classification dataset.
* :func:`run_measured` runs a command and returns its wall time, CPU time and peak memory
  (``ru_maxrss`` from ``os.wait4``), optionally sampling its resident memory while it runs.
* :data:`CLI_HOOK` runs the ``sua-audit`` CLI in an interpreter that also reports the rows it
  wrote to the cache and the time spent writing them.
"""

from __future__ import annotations

import json
import os
import random
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import ROOT

# The stub's own ``main()``, with Python's SIGINT handler restored: a process started from a
# non-interactive shell in the background inherits SIGINT as ignored, and the stub prints how
# many requests it served only when SIGINT interrupts it.
STUB_LAUNCH = (
    "import signal\n"
    "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    "from tests.support.stub_openai import main\n"
    "main()\n"
)

# Runs the CLI (argv after ``-c HOOK``) and then prints, as the last line of stderr,
# ``CACHE_WRITES {"rows": .., "seconds": .., "calls": .., "exit": .., "timeline": ..}``: what
# Store.put_many wrote and the time spent inside it; ``timeline`` holds the cumulative
# (rows, seconds) after every 50th call.
CLI_HOOK = (
    "import json, runpy, sys, time\n"
    "from sua_audit.store import Store\n"
    "stats = {'rows': 0, 'seconds': 0.0, 'calls': 0, 'exit': 0, 'timeline': []}\n"
    "put_many = Store.put_many\n"
    "def timed(self, rows):\n"
    "    t0 = time.perf_counter()\n"
    "    n = put_many(self, rows)\n"
    "    stats['seconds'] += time.perf_counter() - t0\n"
    "    stats['rows'] += n\n"
    "    stats['calls'] += 1\n"
    "    if stats['calls'] % 50 == 0:\n"
    "        stats['timeline'].append((stats['rows'], stats['seconds']))\n"
    "    return n\n"
    "Store.put_many = timed\n"
    "sys.argv = ['sua-audit', *sys.argv[1:]]\n"
    "try:\n"
    "    runpy.run_module('sua_audit', run_name='__main__')\n"
    "except SystemExit as exc:\n"
    "    stats['exit'] = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)\n"
    "print('CACHE_WRITES ' + json.dumps(stats), file=sys.stderr, flush=True)\n"
    "sys.exit(stats['exit'])\n"
)
CACHE_WRITES_PREFIX = "CACHE_WRITES "

_SERVED = re.compile(r"served (\d+) requests, max in flight (\d+)")
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def proc_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a running process (Linux ``/proc``; ``None`` elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def proc_rss_mb(pid: int) -> float | None:
    """Current resident memory of a process in MB (Linux ``/proc``; ``None`` elsewhere)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class StubProcess:
    """``tests.support.stub_openai`` served from its own process, as a context manager."""

    def __init__(self, *, latency: float = 0.0, record: bool = False) -> None:
        self.latency = latency
        self.record = record
        self.base_url = ""
        self.served: int | None = None
        """Requests served (all paths), known after exit."""
        self.max_in_flight: int | None = None
        self.cpu_seconds: float | None = None
        """The stub's CPU time over its whole life, known after exit."""
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> StubProcess:
        args = [sys.executable, "-c", STUB_LAUNCH, "--port", "0", "--latency", str(self.latency)]
        if not self.record:
            args.append("--no-record")
        self._proc = subprocess.Popen(
            args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().strip()
        if not line.startswith("http"):
            self._proc.kill()
            rest = self._proc.stdout.read()
            sys.exit(f"error: the stub server did not start: {line}\n{rest}")
        self.base_url = line
        return self

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def cpu_now(self) -> float | None:
        """The stub's CPU seconds so far."""
        return proc_cpu_seconds(self.pid)

    def __exit__(self, *exc: object) -> None:
        proc = self._proc
        if proc is None:
            return
        self.cpu_seconds = self.cpu_now()
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        m = _SERVED.search(out or "")
        if m:
            self.served, self.max_in_flight = int(m.group(1)), int(m.group(2))


WORDS = (
    "the a this that film movie story actor actress plot script scene scenes music ending "
    "beginning characters director camera cast was is felt seemed very quite rather truly "
    "good bad dull charming boring funny sad long short slow clever warm cold fresh tired "
    "and but with without yet never always often"
).split()


def write_classification_dataset(path: Path, n: int, *, seed: int = 0) -> Path:
    """``n`` synthetic two-label classification items (8–20 random words each) as JSONL."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 20)))
            item = {
                "id": f"syn-{i:06d}",
                "task": "classification",
                "input": text,
                "labels": ["negative", "positive"],
                "label": rng.choice(["negative", "positive"]),
            }
            f.write(json.dumps(item) + "\n")
    return path


def cli_run_args(
    dataset: Path, base_url: str, out: Path, *extra: str, cache: Path | None = None
) -> list[str]:
    """``sua-audit run`` arguments for an ``openai/x`` audit against the stub at ``base_url``."""
    cache_args = ["--cache", str(cache)] if cache is not None else ["--cache-mode", "off"]
    return [
        "run",
        "--dataset",
        str(dataset),
        "--model",
        "openai/x",
        "--base-url",
        base_url,
        *cache_args,
        "--out",
        str(out),
        "--json",
        "--no-progress",
        *extra,
    ]


@dataclass
class Measured:
    """What :func:`run_measured` saw of one process."""

    returncode: int
    wall_s: float
    cpu_s: float
    """User + system CPU seconds of the process (and any children it waited for)."""
    maxrss_mb: float
    """Peak resident memory (``ru_maxrss``)."""
    stdout: str
    stderr: str
    rss_samples_mb: list[tuple[float, float]] = field(default_factory=list)
    """(seconds since start, resident MB), when sampled."""

    def summary_json(self) -> dict[str, Any]:
        """The ``--json`` summary the CLI printed on stdout."""
        return json.loads(self.stdout)


def run_measured(
    args: list[str], *, sample_every: float | None = None, env: dict[str, str] | None = None
) -> Measured:
    """Run ``args`` to completion; wall time, CPU time and peak memory via ``os.wait4``.

    stdout and stderr go to temporary files (a pipe could fill and block a long run). With
    ``sample_every``, a thread records the process's resident memory at that interval.
    """
    import tempfile

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(args, cwd=ROOT, stdout=out, stderr=err, text=True, env=env)
        samples: list[tuple[float, float]] = []
        done = threading.Event()

        def sample() -> None:
            assert sample_every is not None
            while not done.wait(sample_every):
                rss = proc_rss_mb(proc.pid)
                if rss is not None:
                    samples.append((time.perf_counter() - t0, rss))

        sampler = threading.Thread(target=sample, daemon=True) if sample_every else None
        if sampler is not None:
            sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        done.set()
        proc.returncode = os.waitstatus_to_exitcode(status)
        if sampler is not None:
            sampler.join()
        out.seek(0)
        err.seek(0)
        return Measured(
            returncode=proc.returncode,
            wall_s=wall,
            cpu_s=usage.ru_utime + usage.ru_stime,
            maxrss_mb=_maxrss_mb(usage),
            stdout=out.read(),
            stderr=err.read(),
            rss_samples_mb=samples,
        )


def _maxrss_mb(usage: resource.struct_rusage) -> float:
    # Linux reports kilobytes, macOS bytes.
    return usage.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)


def cache_writes(stderr: str) -> dict[str, Any] | None:
    """The ``CACHE_WRITES`` line :data:`CLI_HOOK` printed, or ``None``."""
    for line in reversed(stderr.splitlines()):
        if line.startswith(CACHE_WRITES_PREFIX):
            return json.loads(line[len(CACHE_WRITES_PREFIX) :])
    return None
