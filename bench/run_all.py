"""Run every benchmark, one subprocess each, and print their JSON result lines.

Each benchmark prints its own table as it goes (passed through here) and ends with one line
``BENCH_JSON {...}``; this script collects those lines and prints them again at the end, one per
benchmark, followed by one combined ``BENCH_JSON`` line. Benchmarks run one after another (never
in parallel: they would slow each other down). Exit code: 0 when every benchmark exited 0, else
1. Defaults take about 6.5 minutes for the four model benchmarks on a 2-core CPU machine, and
about 10 more for the three hosted ones on a quiet machine (``large_dataset`` alone about 7);
``--only`` picks a subset.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from _common import JSON_PREFIX, emit

BENCHMARKS = (
    "label_scoring",
    "qa_sampling",
    "cache_rerun",
    "cli_startup",
    "hosted_throughput",
    "hosted_requests",
    "large_dataset",
    "large_evaluation",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS), help="benchmarks to run"
    )
    args = parser.parse_args()
    here = Path(__file__).resolve().parent
    results: dict[str, dict[str, object]] = {}
    codes: dict[str, int] = {}
    for name in args.only:
        print(f"== {name}", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, str(here / f"{name}.py")],
            stdout=subprocess.PIPE,
            text=True,
        )
        sys.stdout.write(proc.stdout)
        codes[name] = proc.returncode
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(JSON_PREFIX)]
        if lines:
            results[name] = json.loads(lines[-1][len(JSON_PREFIX) :])
        print(f"-- {name}: exit {proc.returncode}, {time.perf_counter() - t0:.0f} s\n", flush=True)

    print("== results")
    for name in args.only:
        if name in results:
            print(JSON_PREFIX + json.dumps(results[name], sort_keys=True))
        else:
            print(f"{name}: no result line (exit {codes[name]})")
    emit({"bench": "all", "exit_codes": codes, "results": results})
    return 0 if all(code == 0 for code in codes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
