"""Cold start of ``sua-audit --help``, against the interpreter floor and ``import torch``.

What it measures: the wall time of three subprocesses, each run ``--repeats`` times (default
10) in rotation (A B C, B C A, C A B, ...) so background load hits all three alike:

* ``.venv/bin/sua-audit --help`` — the installed console script (the target: median < 0.3 s);
* ``python -c pass`` — the interpreter's own start-up, the floor nothing can beat;
* ``python -c "import torch"`` — what the CLI avoids importing until a model is loaded.

It reports the median and minimum of each and the ratios to the floor. "Cold" means a new
process every time; the files are in the page cache after the first run, as they are for a user
who types commands one after another.

It also checks, in a fresh interpreter, that ``import sua_audit.cli`` (which registers every
command) leaves torch, transformers and numpy out of ``sys.modules``; the script exits 1 if any
of them is loaded.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _common import ROOT, emit, median, table

TARGET_S = 0.3
HEAVY = ("torch", "transformers", "numpy")

CHECK_IMPORTS = (
    "import json, sys\n"
    "import sua_audit.cli\n"
    f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
)


def console_script() -> Path:
    """``sua-audit`` next to this interpreter (the venv's), else the repo's ``.venv``."""
    for candidate in (Path(sys.executable).parent / "sua-audit", ROOT / ".venv/bin/sua-audit"):
        if candidate.is_file():
            return candidate
    found = shutil.which("sua-audit")
    if found is None:
        sys.exit("error: sua-audit is not installed; run `make install` first.")
    return Path(found)


def timed(cmd: list[str]) -> float:
    """Wall time of one subprocess; exit if it fails."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"error: {' '.join(cmd)} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="runs of each (default 10)")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    proc = subprocess.run(
        [sys.executable, "-c", CHECK_IMPORTS], capture_output=True, text=True, cwd=ROOT
    )
    if proc.returncode != 0:
        sys.exit(f"error: import sua_audit.cli failed: {proc.stderr[-2000:]}")
    heavy_loaded: list[str] = json.loads(proc.stdout.strip().splitlines()[-1])

    commands = {
        "sua-audit --help": [str(console_script()), "--help"],
        "python -c pass": [sys.executable, "-c", "pass"],
        'python -c "import torch"': [sys.executable, "-c", "import torch"],
    }
    names = list(commands)
    for name in names:  # one untimed run each: page cache, .pyc files
        timed(commands[name])
    walls: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(args.repeats):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            walls[name].append(timed(commands[name]))

    med = {n: median(w) for n, w in walls.items()}
    floor = med["python -c pass"]
    print(f"CLI start-up: {args.repeats} rotated runs of each")
    print(
        table(
            ["command", "median s", "min s", "x floor"],
            [[n, med[n], min(walls[n]), med[n] / floor] for n in names],
        )
    )
    help_med = med["sua-audit --help"]
    met = help_med < TARGET_S
    print(
        f"sua-audit --help median {help_med:.3f} s, target < {TARGET_S} s: "
        f"{'met' if met else 'NOT met'}; above the interpreter floor by "
        f"{help_med - floor:.3f} s; import torch alone {med[names[2]]:.2f} s"
    )
    print(
        "import sua_audit.cli loads "
        + (", ".join(heavy_loaded) if heavy_loaded else "none of " + ", ".join(HEAVY))
    )
    emit(
        {
            "bench": "cli_startup",
            "repeats": args.repeats,
            "help_median_s": round(help_med, 4),
            "help_min_s": round(min(walls["sua-audit --help"]), 4),
            "python_pass_median_s": round(floor, 4),
            "python_pass_min_s": round(min(walls["python -c pass"]), 4),
            "import_torch_median_s": round(med[names[2]], 4),
            "import_torch_min_s": round(min(walls[names[2]]), 4),
            "help_over_floor_ratio": round(help_med / floor, 3),
            "torch_over_help_ratio": round(med[names[2]] / help_med, 3),
            "target_s": TARGET_S,
            "target_met": met,
            "heavy_modules_loaded": heavy_loaded,
        }
    )
    if heavy_loaded:
        print(f"error: import sua_audit.cli loaded {', '.join(heavy_loaded)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
