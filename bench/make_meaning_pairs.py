"""Make ``bench/data/meaning_pairs_public.jsonl`` from a copy of PAWS-Wiki (deterministic).

PAWS (Zhang, Baldridge and He, NAACL 2019) pairs Wikipedia sentences that share nearly all
their words, each labelled by people as a paraphrase (1) or not (0): word swaps that change who
did what ("flights from New York to Florida" / "from Florida to New York") next to back
translations and swaps that keep the meaning. That is the case a lexical check cannot see, so
it is the hard half of a meaning benchmark. Provenance, licence and citation:
``bench/data/README.md``.

Input: a ``labeled_final`` TSV (``id``, ``sentence1``, ``sentence2``, ``label``; a header row
is optional, as copies differ). Output: ``--n`` pairs, half of each label, sampled with
``random.Random(--seed)`` from the pairs left after dropping identical sentences and repeated
pairs; within each label the first half of the sample is split ``dev`` and the rest
``heldout`` (choose thresholds on ``dev``, report on ``heldout``). Lines are sorted by split and
PAWS id. Sentences are kept verbatim (PAWS's tokenised text: ``born 1963 , in Paris .``).

Run (paths as in bench/data/README.md)::

    python bench/make_meaning_pairs.py --paws-tsv /tmp/paws_test.tsv
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "data" / "meaning_pairs_public.jsonl"
SHARED_DATA = ROOT.parent / "shared" / "data"

#: sha256 of the PAWS-Wiki labeled_final test.tsv this file was made from (the copy named in
#: bench/data/README.md). Another copy may differ in its header line only; the script says so.
EXPECTED_SHA256 = "a4dfaa993492e02982bf6f2cebe7e3903dcb18e591b336517bdb78ddfb2e852d"
DEFAULT_SEED = 15
DEFAULT_N = 400
SOURCE_PREFIX = "paws-wiki/labeled_final/test"


def read_paws(path: Path) -> list[dict[str, Any]]:
    """The rows of a PAWS TSV as ``id``, ``a``, ``b``, ``same``; a header row is skipped."""
    rows = []
    with open(path, encoding="utf-8", newline="") as f:
        for lineno, fields in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
            if lineno == 1 and fields and fields[0] == "id":
                continue
            if len(fields) != 4 or fields[3] not in ("0", "1") or not fields[0].isdigit():
                raise SystemExit(f"error: {path}:{lineno}: not an id/sentence1/sentence2/label row")
            rows.append(
                {"id": int(fields[0]), "a": fields[1], "b": fields[2], "same": fields[3] == "1"}
            )
    return rows


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


def usable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop pairs whose two sentences are the same text, and every repeat of a pair (either order)."""
    seen: set[frozenset[str]] = set()
    kept = []
    for row in sorted(rows, key=lambda r: r["id"]):
        a, b = _norm(row["a"]), _norm(row["b"])
        key = frozenset((a, b))
        if a == b or key in seen:
            continue
        seen.add(key)
        kept.append(row)
    return kept


def sample(rows: list[dict[str, Any]], n: int, seed: int) -> list[dict[str, Any]]:
    """``n // 2`` pairs of each label, seeded; half of each label ``dev``, half ``heldout``."""
    rng = random.Random(seed)
    out = []
    for same in (True, False):
        pool = [r for r in rows if r["same"] is same]  # already in id order
        chosen = rng.sample(pool, n // 2)
        for i, row in enumerate(chosen):
            out.append(
                {
                    "a": row["a"],
                    "b": row["b"],
                    "same": same,
                    "category": "paws_paraphrase" if same else "paws_non_paraphrase",
                    "split": "dev" if i < n // 4 else "heldout",
                    "source": f"{SOURCE_PREFIX}:{row['id']}",
                }
            )
    out.sort(key=lambda r: (r["split"] != "dev", int(r["source"].rsplit(":", 1)[1])))
    return out


def shared_texts() -> set[str]:
    """Every string value in ../shared/data/*.jsonl (normalised), to keep them out of the pairs."""
    texts: set[str] = set()
    if not SHARED_DATA.is_dir():
        return texts

    def walk(value: object) -> None:
        if isinstance(value, str):
            texts.add(_norm(value))
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for path in sorted(SHARED_DATA.glob("*.jsonl")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    walk(json.loads(line))
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paws-tsv", type=Path, required=True, help="PAWS-Wiki labeled_final TSV")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--n", type=int, default=DEFAULT_N, help="pairs, a multiple of 4")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args()
    if args.n <= 0 or args.n % 4:
        raise SystemExit("error: --n must be a positive multiple of 4")

    digest = hashlib.sha256(args.paws_tsv.read_bytes()).hexdigest()
    if digest != EXPECTED_SHA256:
        print(
            f"warning: {args.paws_tsv} has sha256 {digest}, not the recorded {EXPECTED_SHA256}; "
            "the sample may differ from the committed file",
            file=sys.stderr,
        )
    rows = read_paws(args.paws_tsv)
    kept = usable(rows)
    pairs = sample(kept, args.n, args.seed)
    leaked = shared_texts()
    clash = [p["source"] for p in pairs if _norm(p["a"]) in leaked or _norm(p["b"]) in leaked]
    if clash:
        raise SystemExit(f"error: {len(clash)} pairs share text with ../shared/data: {clash[:5]}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        for pair in pairs:
            f.write(json.dumps(pair, ensure_ascii=False) + "\n")
    n_same = sum(p["same"] for p in pairs)
    print(
        f"{args.out}: {len(pairs)} pairs ({n_same} paraphrases, {len(pairs) - n_same} not) "
        f"sampled with seed {args.seed} from {len(kept)} usable of {len(rows)} PAWS rows "
        f"({sum(r['same'] for r in kept)} paraphrases usable)"
    )


if __name__ == "__main__":
    main()
