"""A run folder's files: ``results.jsonl``, ``summary.json`` and what is derived from them.

A run folder is written as a unit. A new run into an existing folder first removes the older
run's ``summary.json`` (the mark of a finished run) and every file derived from it
(``evaluation.json``, ``report.*``), then writes ``results.jsonl`` and ``summary.json`` under
temporary names, renamed into place only when complete: a crash or Ctrl-C never leaves a
half-written output, nor an older run's numbers beside newer results.

``summary.json`` records the sha256 and row count of its ``results.jsonl``; derived files
record the run id and that hash. Readers check both, so a file that belongs to another run,
or a results file that was truncated, emptied or edited, is an error (exit 3), never read as
if it were this run's.

Every file goes through the models of :mod:`sua_audit.schema` both ways: writers validate
each row, the summary and the evaluation before writing (a misfit is a bug and raises), and
readers validate what they read (a missing field or a wrong type is exit 3, naming the file and
the field). ``summary.json`` and ``evaluation.json`` record their ``schema_version``; a file
from a newer sua-audit is refused with a message to upgrade, a file from before versions is
read as the same shape with its missing fields defaulted.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from sua_audit.errors import RunReadError
from sua_audit.schema import (
    SCHEMA_VERSION,
    VERSION_KEY,
    Evaluation,
    ResultRow,
    Summary,
    check_written,
    describe_error,
    file_version,
)

RESULTS_FILE = "results.jsonl"
SUMMARY_FILE = "summary.json"
EVALUATION_FILE = "evaluation.json"
#: Files derived from a run's results; removed when a new run is written into the folder.
DERIVED_FILES = (EVALUATION_FILE, "report.html", "report.md", "report.json")
#: Summary key binding summary.json to its results.jsonl.
OUTPUTS_KEY = "outputs"

_RERUN = "Run `sua-audit run` again to rewrite the folder, or pass another run folder."


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus random hex."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def atomic_write(path: Path, chunks: Iterable[str]) -> None:
    """Write ``chunks`` to ``path`` through a temporary file and a rename: never half-written."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            for chunk in chunks:
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class _Hashing:
    """Wraps the JSON lines of results.jsonl, counting rows, hashing the bytes written and
    validating each row against :class:`~sua_audit.schema.ResultRow` (a misfit raises)."""

    def __init__(self, items: Iterable[dict[str, Any]]) -> None:
        self._items = items
        self.digest = hashlib.sha256()
        self.rows = 0

    def __iter__(self) -> Iterator[str]:
        for row in self._items:
            line = json.dumps(row, ensure_ascii=False) + "\n"
            check_written(ResultRow, line)
            self.digest.update(line.encode("utf-8"))
            self.rows += 1
            yield line


def clear_run_folder(out_dir: Path) -> None:
    """Remove an older run's finished mark and derived files from ``out_dir``.

    summary.json goes first: from then on the folder holds no finished run until the new
    summary.json is renamed into place, whatever happens in between.
    """
    for name in (SUMMARY_FILE, *DERIVED_FILES):
        (out_dir / name).unlink(missing_ok=True)


def write_outputs(out_dir: Path, items: Iterable[dict[str, Any]], summary: dict[str, Any]) -> None:
    """Write results.jsonl (streamed from ``items``), then summary.json (its presence marks a
    finished run). ``summary`` gains the ``outputs`` record that binds it to the results (and
    ``schema_version`` when the writer left it out); both files are validated as written.

    Raises:
        ValueError: a row or the summary does not fit its model (a bug in the writer); no
            summary.json is written, so the folder holds no finished run.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    clear_run_folder(out_dir)
    lines = _Hashing(items)
    atomic_write(out_dir / RESULTS_FILE, lines)
    summary.setdefault(VERSION_KEY, SCHEMA_VERSION)
    summary[OUTPUTS_KEY] = {"results_sha256": lines.digest.hexdigest(), "results_rows": lines.rows}
    text = json.dumps(summary, indent=2, ensure_ascii=False) + "\n"
    check_written(Summary, text)
    atomic_write(out_dir / SUMMARY_FILE, [text])


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def read_json_file(path: Path) -> Any:
    """Parse one JSON file of a run folder; unreadable or invalid JSON is a RunReadError."""
    try:
        return json.loads(path.read_text(encoding="utf-8"), parse_constant=_reject_constant)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RunReadError(f"cannot read '{path}': {exc}. {_RERUN}") from exc


#: Summary fields that must be numbers (or null) when present; anything else is corruption.
_NUMERIC_RESULTS = (
    "items",
    "items_scored",
    "items_failed",
    "items_with_gold",
    "accuracy",
    "robust_accuracy",
    "selective_accuracy",
    "abstention_rate",
    "abstained",
    "confident_flip_rate",
)


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def read_summary(run_dir: Path) -> dict[str, Any]:
    """Load and check a finished run's summary.json.

    Raises:
        RunReadError: unreadable, not an object, no run id or results, or a results field
            that should be a number is something else.
    """
    path = Path(run_dir) / SUMMARY_FILE
    data = read_json_file(path)
    if not isinstance(data, dict):
        raise RunReadError(f"'{path}' is not a JSON object. {_RERUN}")
    version = _version(data, path)
    if not isinstance(data.get("run_id"), str) or not data["run_id"]:
        raise RunReadError(f"'{path}': no run_id; it was not written by `sua-audit run`. {_RERUN}")
    results = data.get("results")
    if not isinstance(results, dict):
        raise RunReadError(f"'{path}': no 'results' object. {_RERUN}")
    for key in _NUMERIC_RESULTS:
        value = results.get(key)
        if value is not None and not _is_number(value):
            raise RunReadError(
                f"'{path}': results.{key} is {json.dumps(value)[:40]}, not a number. {_RERUN}"
            )
    mean_scores = results.get("mean_scores")
    if mean_scores is not None:
        if not isinstance(mean_scores, dict) or any(
            v is not None and not _is_number(v) for v in mean_scores.values()
        ):
            raise RunReadError(f"'{path}': results.mean_scores holds a value that is not a number.")
    _validate(Summary, data, path, version)
    return data


def load_summary(run_dir: Path) -> Summary:
    """A finished run's summary.json as a typed :class:`~sua_audit.schema.Summary` (checked
    as :func:`read_summary` checks it)."""
    return typed_summary(read_summary(run_dir))


def typed_summary(summary: dict[str, Any]) -> Summary:
    """A summary dict (from :func:`read_summary`, or as ``run`` returns it) as its model.

    Validated as its JSON text, as the file holds it: a dict built in memory may carry
    tuples where the file has arrays, which strict validation of Python objects refuses.
    """
    return Summary.model_validate_json(
        json.dumps(summary, ensure_ascii=False), context={VERSION_KEY: summary_version(summary)}
    )


def typed_evaluation(evaluation: dict[str, Any]) -> Evaluation:
    """An evaluation dict (from :func:`read_evaluation`, or as ``evaluate_run`` returns it) as
    its model, validated as its JSON text (see :func:`typed_summary`)."""
    return Evaluation.model_validate_json(
        json.dumps(evaluation, ensure_ascii=False),
        context={VERSION_KEY: summary_version(evaluation)},
    )


def summary_version(summary: dict[str, Any] | None) -> int | None:
    """The schema version of a summary read by :func:`read_summary` (``None``: legacy)."""
    if summary is None:
        return None
    version = summary.get(VERSION_KEY)
    return version if isinstance(version, int) and not isinstance(version, bool) else None


def _version(data: dict[str, Any], path: Path) -> int | None:
    """The file's schema version; a newer or malformed one is a RunReadError (exit 3)."""
    try:
        return file_version(data, path)
    except ValueError as exc:
        raise RunReadError(f"{exc}.") from exc


def _validate(model: type[Any], data: Any, where: str | Path, version: int | None) -> None:
    """Check ``data`` against ``model`` as a file of ``version`` (``None``: legacy, whose
    missing fields default); a misfit is a RunReadError naming the file and the field."""
    try:
        model.model_validate(data, context={VERSION_KEY: version})
    except ValidationError as exc:
        shown = f"'{where}'" if isinstance(where, Path) else where
        raise RunReadError(f"{shown}: {describe_error(exc)}. {_RERUN}") from exc


def read_results(run_dir: Path, summary: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Load a finished run's per-item rows, checked against its summary.

    Every line must be a JSON object with a unique ``id``. When ``summary`` records the
    results file's sha256 (runs from this version on), the file must match it; older runs are
    checked by row count.

    Raises:
        RunReadError: a bad line, a duplicate id, or a file that is not the one the summary
            was written with (truncated, emptied, edited, or from another run).
    """
    path = Path(run_dir) / RESULTS_FILE
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            for number, row in _parsed_rows(fh, path, digest):
                rows.append(row)
                lines.append(number)
    except OSError as exc:
        raise RunReadError(f"cannot read '{path}': {exc}. {_RERUN}") from exc
    if summary is not None:
        _check_results(path, summary, digest.hexdigest(), len(rows))
    # After the binding check: a file that is not the summary's is named as such first.
    version = summary_version(summary)
    for number, row in zip(lines, rows, strict=True):
        _validate(ResultRow, row, f"{path}:{number}", version)
    return rows


def _parsed_rows(
    fh: IO[bytes], path: Path, digest: Any = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) of every non-blank line of an open results file, each checked to be
    a JSON object with an ``id`` seen once; every line, blank or not, feeds ``digest``."""
    seen: set[str] = set()
    for number, raw in enumerate(fh, start=1):
        if digest is not None:
            digest.update(raw)
        if not raw.strip():
            continue
        try:
            row = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError) as exc:
            raise RunReadError(f"{path}:{number}: not valid JSON ({exc}). {_RERUN}") from exc
        if not isinstance(row, dict) or "id" not in row:
            raise RunReadError(
                f"{path}:{number}: not a result row (an object with an 'id'). {_RERUN}"
            )
        key = str(row["id"])
        if key in seen:
            raise RunReadError(f"{path}:{number}: id {key!r} appears twice. {_RERUN}")
        seen.add(key)
        yield number, row


def iter_results(run_dir: Path, summary: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """A finished run's rows one at a time, checked as :func:`read_results` checks them, for
    readers that keep only a few fields per row (the evaluation of a 100,000-item run).

    The file is read twice: first hashed and its rows counted, so a file that is not the
    summary's is refused before any row is yielded (as :func:`read_results` refuses it before
    checking rows); then parsed, each row checked against the schema as it is yielded.

    Raises:
        RunReadError: as :func:`read_results`, when the row in question is reached.
    """
    path = Path(run_dir) / RESULTS_FILE
    try:
        if summary is not None:
            digest = hashlib.sha256()
            count = 0
            with path.open("rb") as fh:
                for raw in fh:
                    digest.update(raw)
                    count += bool(raw.strip())
            _check_results(path, summary, digest.hexdigest(), count)
        version = summary_version(summary)
        with path.open("rb") as fh:
            for number, row in _parsed_rows(fh, path):
                _validate(ResultRow, row, f"{path}:{number}", version)
                yield row
    except OSError as exc:
        raise RunReadError(f"cannot read '{path}': {exc}. {_RERUN}") from exc


def load_results(run_dir: Path, summary: dict[str, Any] | None = None) -> list[ResultRow]:
    """A finished run's rows as typed :class:`~sua_audit.schema.ResultRow` objects (checked
    as :func:`read_results` checks them)."""
    context = {VERSION_KEY: summary_version(summary)}
    return [
        ResultRow.model_validate(row, context=context) for row in read_results(run_dir, summary)
    ]


def typed_rows(rows: Iterable[ResultRow | dict[str, Any]]) -> list[ResultRow]:
    """Rows as their model: rows as :func:`read_results` returns them (dicts, already checked
    against the schema) or :class:`~sua_audit.schema.ResultRow` objects."""
    return [row if isinstance(row, ResultRow) else ResultRow.model_validate(row) for row in rows]


def read_evaluation(path: Path, summary: dict[str, Any]) -> dict[str, Any]:
    """Load and check an evaluation.json: its version, that it belongs to ``summary``'s run
    (see :func:`check_binding`), and its shape.

    Raises:
        RunReadError: unreadable, too new, another run's, or a field missing or mistyped.
    """
    data = read_json_file(path)
    if not isinstance(data, dict):
        raise RunReadError(f"'{path}' is not a JSON object. Run `sua-audit evaluate` again.")
    version = _version(data, path)
    check_binding(path, data, summary)
    try:
        Evaluation.model_validate(data, context={VERSION_KEY: version})
    except ValidationError as exc:
        raise RunReadError(
            f"'{path}': {describe_error(exc)}. Run `sua-audit evaluate {path.parent}` to "
            "recompute it."
        ) from exc
    return data


def _check_results(path: Path, summary: dict[str, Any], sha256: str, n_rows: int) -> None:
    outputs = summary.get(OUTPUTS_KEY)
    if isinstance(outputs, dict) and outputs.get("results_sha256"):
        if outputs["results_sha256"] != sha256:
            raise RunReadError(
                f"'{path}' is not the results file its summary.json was written with "
                f"({n_rows} rows, sha256 {sha256[:12]}…; the summary records "
                f"{outputs.get('results_rows')} rows, {str(outputs['results_sha256'])[:12]}…): "
                f"it was changed after the run, or comes from another run. {_RERUN}"
            )
        return
    expected = (summary.get("results") or {}).get("items")
    if isinstance(expected, int | float) and _is_number(expected) and int(expected) != n_rows:
        raise RunReadError(
            f"'{path}' has {n_rows} rows but its summary.json counts {int(expected)} items: "
            f"the file was truncated or changed after the run. {_RERUN}"
        )


def run_binding(summary: dict[str, Any]) -> dict[str, Any]:
    """What a derived file records to say which run it was derived from."""
    outputs = summary.get(OUTPUTS_KEY) or {}
    return {"run_id": summary.get("run_id"), "results_sha256": outputs.get("results_sha256")}


def check_binding(path: Path, derived: dict[str, Any], summary: dict[str, Any]) -> None:
    """Refuse a derived file (evaluation.json, ...) that belongs to another run."""
    own = run_binding(summary)
    theirs_id = derived.get("run_id")
    theirs_sha = (derived.get("run") or {}).get("results_sha256")
    if theirs_id != own["run_id"] or (
        own["results_sha256"] and theirs_sha and theirs_sha != own["results_sha256"]
    ):
        raise RunReadError(
            f"'{path}' belongs to run {theirs_id!r}, not to this folder's run "
            f"{own['run_id']!r}: it is stale. Run `sua-audit evaluate {path.parent}` to "
            "recompute it."
        )


def check_writable_dir(path: Path, flag: str) -> None:
    """Refuse, before any work, a folder that cannot be created or written (exit 2).

    Nothing is left behind: the probe file is written in the nearest folder that exists and
    removed at once; ``path`` itself is not created.
    """
    import tempfile

    from sua_audit.errors import ConfigError

    if str(path) == "":
        raise ConfigError(f"{flag} is empty. Pass a folder path.")
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {path}: this is a file, not a folder. Pass a folder path.")
    probe_in = path
    while not probe_in.exists():
        if probe_in.parent == probe_in:
            break
        probe_in = probe_in.parent
    if not probe_in.is_dir():
        raise ConfigError(
            f"{flag} {path}: '{probe_in}' is a file, so the folder cannot be created there."
        )
    try:
        fd, name = tempfile.mkstemp(prefix=".sua-audit-probe-", dir=probe_in)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        raise ConfigError(
            f"{flag} {path}: cannot write in '{probe_in}' ({exc.strerror or exc}). "
            "Pass a writable folder."
        ) from exc


def check_writable_file(path: Path, flag: str) -> None:
    """Refuse, before any work, an output file path that cannot be written (exit 2)."""
    from sua_audit.errors import ConfigError

    if str(path) == "":
        raise ConfigError(f"{flag} is empty. Pass a file path.")
    if path.is_dir():
        raise ConfigError(f"{flag} {path}: this is a folder. Pass a file path.")
    check_writable_dir(path.parent if str(path.parent) else Path("."), flag)


def run_status(results: dict[str, Any], max_failed_share: float) -> str:
    """``complete`` (every item scored), ``partial`` (some failed, within the allowed share)
    or ``failed`` (no item scored, or a failed share above ``--max-failed-share``).

    A failed run still writes its outputs, so that its failures can be read; ``run`` exits 3
    on it and ``gate`` refuses it.
    """
    n = int(results.get("items") or 0)
    failed = int(results.get("items_failed") or 0)
    if n == 0 or failed >= n or failed / n > max_failed_share:
        return "failed"
    return "partial" if failed else "complete"


def check_status(summary: dict[str, Any] | Summary) -> None:
    """Raise NothingScored (exit 3) for a run whose status is ``failed``."""
    from sua_audit.errors import NothingScored

    s = summary if isinstance(summary, Summary) else typed_summary(summary)
    if s.status != "failed":
        return
    res = s.results
    n, failed = res.items or 0, res.items_failed or 0
    kinds = ", ".join(f"{k} {v}" for k, v in sorted((res.failures_by_kind or {}).items()))
    share = s.config.max_failed_share if s.config and s.config.max_failed_share is not None else 1.0
    why = (
        "no item could be scored"
        if failed >= n
        else f"{failed / n:.0%} of items failed, above --max-failed-share {share:g}"
    )
    raise NothingScored(
        f"{why}: {failed} of {n} items failed"
        + (f" ({kinds})" if kinds else "")
        + f". Each item's error is in {s.out_dir}/results.jsonl; finished "
        "requests are cached, so a rerun pays only for the failed ones."
    )
