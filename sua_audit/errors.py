"""Exceptions raised on purpose by sua-audit, and the exit codes they map to.

```
SuaAuditError                      base: anything the tool raised on purpose (exit 3)
├── ConfigError                    bad option or option combination (exit 2)
├── DatasetError                   one or more bad dataset lines (exit 2)
├── MissingDependencyError         an optional extra is not installed (exit 2)
├── BackendError                   the model backend failed (exit 3)
│   ├── ModelLoadError             local model files missing or unreadable
│   ├── RequestFailed              one request failed for good; recorded per item, run goes on
│   └── CostLimitError             the estimated cost is above --max-cost (exit 2)
├── SpendLimitReached              real spend reached --max-cost mid-run (exit 3)
├── StoreError                     unreadable / locked / corrupt cache database (exit 3)
└── SchemaVersionError             cache written by a newer sua-audit (exit 3)
```

Messages say what happened and what to do, in one line each.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

#: Exit codes, documented in the README.
EXIT_OK = 0
EXIT_GATE_FAILED = 1
EXIT_USAGE = 2
EXIT_TOOL_ERROR = 3
EXIT_INTERRUPTED = 130


class SuaAuditError(Exception):
    """Base class for errors the tool raises on purpose."""

    exit_code: int = EXIT_TOOL_ERROR


class ConfigError(SuaAuditError):
    """A bad option value or combination."""

    exit_code = EXIT_USAGE


@dataclass(frozen=True)
class DatasetProblem:
    """One problem in one dataset line."""

    path: str
    line: int
    field: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.field}: {self.problem} — {self.fix}"


class DatasetError(SuaAuditError):
    """The dataset has bad lines; every problem found is listed, one per line."""

    exit_code = EXIT_USAGE

    def __init__(self, problems: list[DatasetProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class MissingDependencyError(SuaAuditError):
    """An optional feature's packages are not installed."""

    exit_code = EXIT_USAGE

    def __init__(self, feature: str, extra: str) -> None:
        self.extra = extra
        super().__init__(
            f"{feature} needs packages that are not installed. "
            f"Install them with: pip install 'sua-audit[{extra}]'"
        )


class BackendError(SuaAuditError):
    """The model backend failed."""


class ModelLoadError(BackendError):
    """A local model could not be found or loaded."""


#: Why a request failed. Retryable kinds are retried by the backend first; what reaches the
#: run is final for this run (a rerun tries again: failures are never cached).
FAILURE_KINDS = (
    "rate_limit",  # 429 after every retry
    "server",  # 5xx after every retry
    "timeout",  # no answer within the timeout, after every retry
    "connection",  # connection refused / dropped, after every retry
    "malformed",  # a response that is not the JSON the API promises, after every retry
    "auth",  # 401 / 403: the key is missing, wrong or lacks access
    "not_found",  # 404: no such model on this server
    "context_length",  # the prompt is too long for the model
    "content_filter",  # the vendor refused the content
    "bad_request",  # any other 4xx
    "empty",  # a well-formed answer with nothing usable in it
)


_KEYLIKE = re.compile(r"\b(?:sk|pk|rk|key|api)[-_][A-Za-z0-9_\-*.]{6,}", re.IGNORECASE)
_SECRET_ENV = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)$", re.IGNORECASE)


def redact(text: str) -> str:
    """Remove secrets from text bound for results, logs or the cache.

    The values of environment variables whose names end in KEY, TOKEN, SECRET or PASSWORD are
    replaced wherever they appear, as are key-shaped strings (``sk-...``), which vendors echo
    back partly masked in error messages.
    """
    for name, value in os.environ.items():
        if len(value) >= 8 and _SECRET_ENV.search(name) and value in text:
            text = text.replace(value, "[redacted]")
    return _KEYLIKE.sub("[redacted]", text)


class RequestFailed(BackendError):
    """One request could not be answered; the item is reported as failed, the run goes on."""

    def __init__(
        self, kind: str, message: str, *, status: int | None = None, attempts: int = 1
    ) -> None:
        self.kind = kind
        self.status = status
        self.attempts = attempts
        self.retry_after: float | None = None
        super().__init__(redact(message))

    def to_dict(self) -> dict[str, object]:
        """Plain data for results.jsonl."""
        return {
            "kind": self.kind,
            "status": self.status,
            "attempts": self.attempts,
            "message": str(self),
        }


class CostLimitError(BackendError):
    """The estimated cost of a run is above ``--max-cost``."""

    exit_code = EXIT_USAGE


class SpendLimitReached(SuaAuditError):
    """The run's real spend reached ``--max-cost``; finished requests are cached."""

    exit_code = EXIT_TOOL_ERROR


class StoreError(SuaAuditError):
    """The cache database cannot be used."""


class SchemaVersionError(StoreError):
    """The cache database was written by a newer sua-audit."""
