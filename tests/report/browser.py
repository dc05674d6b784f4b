"""Headless Chromium driven through its command line: DOM after scripts ran, console messages,
screenshots; and a small PNG decoder for the "not blank" check (no imaging library needed)."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

REQUIRE_BROWSER_ENV = "SUA_AUDIT_REQUIRE_BROWSER"
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-extensions",
    "--enable-logging=stderr",
    "--v=0",
)
# Chromium logs every console message (console.error, uncaught exceptions, CSP violations) on
# stderr as "...:INFO:CONSOLE(...)" or "...:INFO:CONSOLE:<line>]".
_CONSOLE = re.compile(r":CONSOLE[(:]")


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


@dataclass
class Page:
    dom: str
    console: list[str]
    stderr: str


def _run(binary: str, args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="sua-chromium-") as profile:
        return subprocess.run(
            [binary, *_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def load(binary: str, html: Path) -> Page:
    """The serialized DOM after the page (and any script in it) ran, plus console lines."""
    done = _run(binary, ["--dump-dom", html.resolve().as_uri()])
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if _CONSOLE.search(line)]
    return Page(done.stdout, console, done.stderr)


def screenshot(binary: str, html: Path, png: Path, size: tuple[int, int] = (1280, 2000)) -> Page:
    done = _run(
        binary,
        [f"--screenshot={png}", f"--window-size={size[0]},{size[1]}", html.resolve().as_uri()],
    )
    assert done.returncode == 0 and png.is_file(), done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if _CONSOLE.search(line)]
    return Page("", console, done.stderr)


def png_pixels(png: Path) -> tuple[int, int, list[bytes]]:
    """Width, height and rows of an 8-bit RGB/RGBA/grey PNG, unfiltered."""
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert header is not None
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and interlace == 0, header
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, rows


def grey_variance(png: Path, step: int = 4) -> float:
    """Variance of the grey level over a grid of pixels (0 for a blank page)."""
    width, height, rows = png_pixels(png)
    channels = len(rows[0]) // width
    values = []
    for y in range(0, height, step):
        row = rows[y]
        for x in range(0, width, step):
            px = row[x * channels : x * channels + min(channels, 3)]
            values.append(sum(px) / len(px))
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values) / len(values)
