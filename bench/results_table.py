"""The results table: failure detection of every score on the development sets → docs/results.md.

A benchmark, not a test. For each data set it draws a seeded subset (``random.Random(seed)``
sample, kept in file order, written to a temporary JSONL outside the project), audits it with
the embedded SmolLM2-135M through the real command line (``sua-audit run``, K = 4 rule
perturbations typo, word, distractor, typo; 5 samples per QA variant), and evaluates the run
(``evaluate_run``: clean and worst-case failure labels, bootstrap 95% CIs, 1000 resamples,
seed 0). AmbigNQ and AmbiEnt also give the ambiguity collapse rate (``summary.json``).

The tables go into docs/results.md above the "## SUA-TR" section, which is kept as it is.
Every request is cached (the user cache, or --cache), so a rerun with the same sizes rewrites
the document without model calls.

Usage::

    python bench/results_table.py                      # default sizes (about 20 min on 2 cores)
    python bench/results_table.py --n-label 40 --n-qa 10 --n-ambient 30 --out /tmp/r.md
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import ROOT, SHARED_DATA, quiet_hf

from sua_audit.evaluation.core import SCORES

DATASETS = (
    # (file, kind) — kind picks the subset size
    ("sst2_dev.jsonl", "label"),
    ("snli_dev.jsonl", "label"),
    ("advglue_dev.jsonl", "label"),
    ("truthfulqa_dev.jsonl", "qa"),
    ("ambignq_dev.jsonl", "qa"),
    ("ambient_dev.jsonl", "ambient"),
)
SCORES_SHOWN = SCORES  # every score the evaluation reports, in its order
SUA_TR_HEADING = "## SUA-TR"


def subset(src: Path, n: int, seed: int, dest: Path) -> int:
    """Write a seeded sample of ``n`` items of ``src`` (in file order) to ``dest``."""
    lines = [ln for ln in src.read_text(encoding="utf-8").splitlines() if ln.strip()]
    keep = sorted(random.Random(seed).sample(range(len(lines)), min(n, len(lines))))
    dest.write_text("".join(lines[i] + "\n" for i in keep), encoding="utf-8")
    return len(keep)


def audit(dataset: Path, out: Path, args: argparse.Namespace, qa: bool) -> None:
    """Run ``sua-audit run`` on ``dataset`` into ``out``."""
    k = args.qa_k if qa else args.k
    cmd = [
        str(ROOT / ".venv" / "bin" / "sua-audit"),
        "run",
        "--dataset",
        str(dataset),
        "--out",
        str(out),
        "--perturbations",
        str(k),
        "--seed",
        str(args.seed),
        "--no-progress",
    ]
    if qa:
        cmd += ["--samples", str(args.qa_samples), "--max-tokens", str(args.qa_max_tokens)]
    if args.cache:
        cmd += ["--cache", args.cache]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        sys.exit(f"error: {' '.join(cmd)} failed:\n{res.stderr}")


def kinds(k: int) -> str:
    """The rule kinds a plain ``--perturbations K`` uses, in order."""
    return ", ".join(("typo", "word", "distractor")[i % 3] for i in range(k))


def reusable(run_dir: Path, args: argparse.Namespace, qa: bool) -> dict[str, Any] | None:
    """The summary of a finished run in ``run_dir`` made with these options, else ``None``."""
    path = run_dir / "summary.json"
    if args.fresh or not path.is_file():
        return None
    done: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    cfg = done["config"]
    want = {"perturbations": str(args.qa_k if qa else args.k), "seed": args.seed}
    if qa:
        want |= {"samples": args.qa_samples, "max_tokens": args.qa_max_tokens}
    return done if all(cfg.get(k) == v for k, v in want.items()) else None


def fmt(block: dict[str, Any] | None) -> str:
    """``0.612 [0.55, 0.67]`` or an em dash with the reason."""
    if not block or block.get("value") is None:
        return "—"
    ci = block.get("ci")
    return f"{block['value']:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def dataset_section(
    name: str,
    n: int,
    wall: float,
    ev: dict[str, Any],
    summary: dict[str, Any],
    auto: dict[str, Any],
) -> str:
    """One data set's table and verdict, in Markdown."""
    fl = ev["failure_labels"]
    lines = [
        f"### {name}",
        "",
        f"{n} items ({ev['n_items']} with gold, {ev['split']['n_test']} evaluated); "
        f"accuracy {fmt(ev['accuracy'])}, robust accuracy {fmt(ev['robust_accuracy'])}; "
        f"failures: clean {fl['clean']['failures']}/{fl['clean']['n']}, worst case "
        f"{fl['worst_case']['failures']}/{fl['worst_case']['n']}; ECE of the clean confidence "
        f"{fmt(ev['calibration']['ece'])}; correctness rule `{ev['correctness_rule']}`"
        + (
            f" (exact-match accuracy {fmt(ev['exact_accuracy'])})"
            if ev.get("exact_accuracy")
            else ""
        )
        + "; "
        f"audit wall time {wall:.0f} s.",
        "",
        "| score | AUROC, clean failure | AUROC, worst-case failure | AURC, clean (lower is better) |",
        "| --- | --- | --- | --- |",
    ]
    winners = {label: ev["comparison"][label]["winner"] for label in ("clean", "worst_case")}
    for score in SCORES_SHOWN:
        cells = []
        for label in ("clean", "worst_case"):
            text = fmt(ev["metrics"][label][score]["auroc"])
            cells.append(f"**{text}**" if winners[label] == score else text)
        cells.append(fmt(ev["metrics"]["clean"][score]["aurc"]))
        lines.append(f"| {score} | " + " | ".join(cells) + " |")
    lines.append("")
    for label, words in (("clean", "clean failures"), ("worst_case", "worst-case failures")):
        comp = ev["comparison"][label]
        diff = comp["sua_minus_best_baseline"]
        winner = comp["winner"]
        if winner is None:
            lines.append(f"* {words}: AUROC undefined (one class only).")
            continue
        sua_wins = winner in ("sua", "sua_pos")
        verdict = f"SUA wins ({winner})" if sua_wins else f"**SUA does not win**: {winner} is best"
        ci = diff.get("ci")
        significant = ci is not None and (ci[0] > 0 or ci[1] < 0)
        lines.append(
            f"* {words}: {verdict}; AUROC of sua minus the best baseline "
            f"({comp['best_baseline']}) = {fmt(diff)}"
            + ("" if significant else " — the interval includes 0, no significant difference")
            + "."
        )
    parts = []
    for label, words in (("clean", "clean"), ("worst_case", "worst case")):
        comp = auto["comparison"][label]
        best = comp["best_baseline"]
        sua_auc = auto["metrics"][label]["sua"]["auroc"]
        best_auc = auto["metrics"][label][best]["auroc"] if best else None
        parts.append(
            f"{words}: sua {fmt(sua_auc)} vs {best or '—'} {fmt(best_auc)}, "
            f"sua − best {fmt(comp['sua_minus_best_baseline'])}"
        )
    lines.append(
        f"* λ auto: λ = {auto['lambda']['value']:g} chosen on a validation split of "
        f"{auto['split']['n_validation']} items ({auto['lambda']['criterion']}); AUROC on the "
        f"other {auto['split']['n_test']} items — " + "; ".join(parts) + "."
    )
    amb = summary["results"].get("ambiguity")
    if amb and amb["n_applicable"] and amb["n_uncovered"] == amb["n_applicable"]:
        lines.append(
            f"* ambiguity collapse: not measurable here — on all {amb['n_applicable']} ambiguous "
            "items the model's answers matched none of the annotated readings, so there was no "
            "reading to collapse onto (the recorded rate, 0, means nothing)."
        )
    elif amb:
        lines.append(
            f"* ambiguity collapse: {amb['n_collapsed']} of {amb['n_applicable']} ambiguous items "
            f"collapsed to one reading (rate {amb['collapse_rate']:.3f}"
            + (
                f"; {amb['collapse_rate_covered']:.3f} of those with a covered reading"
                if amb.get("collapse_rate_covered") is not None
                else ""
            )
            + f"; {amb['n_uncovered']} covered no reading)."
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-label", type=int, default=60, help="items per label data set")
    ap.add_argument("--n-qa", type=int, default=12, help="items per QA data set")
    ap.add_argument("--n-ambient", type=int, default=40, help="AmbiEnt items (all: 100)")
    ap.add_argument("--k", type=int, default=4, help="perturbations per item")
    ap.add_argument("--qa-k", type=int, default=2, help="perturbations per QA item")
    ap.add_argument("--qa-samples", type=int, default=3, help="samples per QA variant")
    ap.add_argument("--qa-max-tokens", type=int, default=16, help="longest QA answer")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default="/tmp/sua-results-table", help="subsets and runs go here")
    ap.add_argument("--cache", default=None, help="request cache (default: the user cache)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "results.md"))
    ap.add_argument(
        "--fresh", action="store_true", help="audit again even where --work holds a finished run"
    )
    args = ap.parse_args()
    quiet_hf()
    sys.path.insert(0, str(ROOT))
    from sua_audit.evaluation import evaluate_run

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    sizes = {"label": args.n_label, "qa": args.n_qa, "ambient": args.n_ambient}
    sections, overview = [], []
    t_all = time.perf_counter()
    for file, kind in DATASETS:
        src = SHARED_DATA / file
        if not src.is_file():
            sys.exit(f"error: {src} not found (the shared development data).")
        name = file.removesuffix(".jsonl")
        sub = work / f"{name}-{sizes[kind]}-s{args.seed}.jsonl"
        n = subset(src, sizes[kind], args.seed, sub)
        qa = kind == "qa"
        run_dir = work / f"run-{name}-{sizes[kind]}-k{args.qa_k if qa else args.k}"
        done = reusable(run_dir, args, qa)
        if done is None:
            audit(sub, run_dir, args, qa)
        # else: a finished run of the same subset and options is evaluated again.
        if not (run_dir / "results.jsonl").is_file():
            sys.exit(f"error: {run_dir} has no results.jsonl")
        # Evaluated afresh every time (no model calls). The 135M model rarely matches a gold
        # answer word for word, so QA is graded by token F1 ≥ 0.5; exact match beside it.
        ev = evaluate_run(run_dir, correctness="f1" if qa else None, seed=args.seed)
        if qa:
            exact = evaluate_run(run_dir, correctness="exact", seed=args.seed, write=False)
            ev["exact_accuracy"] = exact["accuracy"]
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
        wall = float(summary["wall_seconds"])
        # λ chosen on a validation split (30%), metrics on the rest: no model calls.
        auto = evaluate_run(
            run_dir, lam="auto", correctness="f1" if qa else None, seed=args.seed, write=False
        )
        print(f"{name}: {n} items, {wall:.0f} s", file=sys.stderr)
        sections.append(dataset_section(name, n, wall, ev, summary, auto))
        overview.append((name, n, ev, summary))
    total = sum(float(s["wall_seconds"]) for _, _, _, s in overview)
    print(f"this invocation: {time.perf_counter() - t_all:.0f} s", file=sys.stderr)
    write_doc(Path(args.out), args, sections, overview, total)


def findings(overview: list[tuple[str, int, dict[str, Any], dict[str, Any]]], n_qa: int) -> str:
    """Plain statements computed from the evaluations: where SUA wins, where it is inverted."""
    out = ["## Findings", ""]
    for label, words in (("clean", "clean"), ("worst_case", "worst-case")):
        defined = [(n, ev) for n, _, ev, _ in overview if ev["comparison"][label]["winner"]]
        wins = [n for n, ev in defined if ev["comparison"][label]["winner"] in ("sua", "sua_pos")]
        worse = [
            n
            for n, ev in defined
            if (ci := ev["comparison"][label]["sua_minus_best_baseline"].get("ci")) and ci[1] < 0
        ]
        out.append(
            f"* {words.capitalize()} failures: SUA (λ = 1) is the best score on {len(wins)} of "
            f"{len(defined)} data sets with both classes"
            + (f" ({', '.join(wins)})" if wins else "")
            + "; it is significantly worse than the best baseline (paired 95% interval below "
            f"0) on {len(worse)}" + (f" ({', '.join(worse)})" if worse else "") + "."
        )
    inverted = []
    for name, _, ev, summary in overview:
        auc = ev["metrics"]["clean"]["sua"]["auroc"]
        if auc.get("ci") and auc["ci"][1] < 0.5:
            means = summary["results"]["mean_scores"]
            inverted.append(
                f"{name} (AUROC {auc['value']:.3f}; mean S {means['sensitivity']:.3f}, "
                f"mean H {means['entropy']:.3f})"
            )
    if inverted:
        out.append(
            "* SUA ranks clean failures *below* chance on "
            + "; ".join(inverted)
            + ". There S is small next to H, so S − H is close to −H: the more uncertain the "
            "model, the lower its SUA, while the uncertain answers are the wrong ones. SUA flags "
            "confident instability, which on these sets is not where most failures are."
        )
    out.append(
        "* QA caveat: token F1 ≥ 0.5 rewards answers that repeat the question's words, so on "
        "TruthfulQA it counts some false answers as right (exact match counts almost none). "
        f"With {n_qa} questions per QA set the intervals are too wide to rank scores."
    )
    return "\n".join(out)


def write_doc(
    path: Path,
    args: argparse.Namespace,
    sections: list[str],
    overview: list[tuple[str, int, dict[str, Any], dict[str, Any]]],
    total: float,
) -> None:
    """Write the results above any existing "## SUA-TR" section (kept verbatim)."""
    rows = []
    for name, n, ev, _ in overview:
        cells = [name, str(n)]
        for label in ("clean", "worst_case"):
            comp = ev["comparison"][label]
            winner = comp["winner"]
            if winner is None:
                cells.append("— (AUROC undefined: one class)")
            else:
                cells.append(winner + ("" if winner in ("sua", "sua_pos") else " (not SUA)"))
            cells.append(fmt(comp["sua_minus_best_baseline"]))
        rows.append("| " + " | ".join(cells) + " |")
    command = (
        f"python bench/results_table.py --n-label {args.n_label} --n-qa {args.n_qa} "
        f"--n-ambient {args.n_ambient} --k {args.k} --qa-k {args.qa_k} "
        f"--qa-samples {args.qa_samples} --qa-max-tokens {args.qa_max_tokens} --seed {args.seed}"
    )
    head = f"""# Results

Failure detection on the development sets (`../shared/data`) with the embedded
SmolLM2-135M-Instruct on CPU. Which score best tells, per input, that the model's answer is
wrong? Two failure labels: **clean** (the answer to the original input is wrong) and
**worst case** (the answer to the original input or to any of its rule perturbations is wrong:
K = {args.k} for classification and NLI — {kinds(args.k)} — and K = {args.qa_k} for
QA — {kinds(args.qa_k)} — with {args.qa_samples} sampled answers per variant, at most
{args.qa_max_tokens} tokens). QA answers are graded by token F1 ≥ 0.5 against any gold answer
(exact-match accuracy is given beside it). Every score is oriented as an uncertainty
(higher = more suspicious); AUROC 0.5 is chance. Intervals are seeded percentile-bootstrap 95%
CIs (1000 resamples, seed {args.seed}); "sua − best baseline" is a paired bootstrap interval.
The tables use λ = 1; each data set also reports λ chosen on a 30% validation split
(`--lambda auto`), with AUROC on the other 70% only. entropy_temp's temperature is cross-fitted
(5 folds), see [method.md](method.md#evaluation).

Subsets (seeded `random.Random({args.seed})` samples, file order): {args.n_label} items of each
classification / NLI set, {args.n_qa} of each QA set, {args.n_ambient} of AmbiEnt — sized to fit
a budget of about 25 minutes on a 2-core CPU; shared with other jobs, the audits took
{total / 60:.1f} min of wall time ({sum(s["model_calls"] for *_, s in overview)} model calls).
With so few items the intervals are wide; read them, not the point values.

Regenerate with the command below. Finished runs in `--work` (default
`/tmp/sua-results-table`) are reused, so a rerun only re-evaluates; without them (or with
`--fresh`) it audits again — requests already in the cache cost nothing, the rest about as
long as above:

```bash
{command}
```

## Summary: which score wins (AUROC)

| data set | items | winner, clean | sua − best baseline, clean | winner, worst case | sua − best baseline, worst case |
| --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}

The best score per column is in bold in each data set's table. Where the winner is not SUA,
SUA does not win on that data set, whatever the size of the gap (a tie goes to the baseline).

{findings(overview, args.n_qa)}

## Per data set

"""
    body = head + "\n".join(sections)
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    tail = ""
    if SUA_TR_HEADING in old:
        tail = old[old.index(SUA_TR_HEADING) :]
    text = body.rstrip() + "\n" + ("\n" + tail if tail else "")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
