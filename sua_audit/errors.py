"""Exceptions raised on purpose by sua-audit, and the exit codes they map to.

```
SuaAuditError                      base: anything the tool raised on purpose (exit 3)
├── ConfigError                    bad option or option combination (exit 2)
├── DatasetError                   one or more bad dataset lines (exit 2)
├── MissingDependencyError         an optional extra is not installed (exit 2)
├── BackendError                   the model backend failed (exit 3)
│   └── ModelLoadError             local model files missing or unreadable
├── StoreError                     unreadable / locked / corrupt cache database (exit 3)
└── SchemaVersionError             cache written by a newer sua-audit (exit 3)
```

Messages say what happened and what to do, in one line each.
"""

from __future__ import annotations

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


class StoreError(SuaAuditError):
    """The cache database cannot be used."""


class SchemaVersionError(StoreError):
    """The cache database was written by a newer sua-audit."""
