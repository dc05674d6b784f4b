"""Where sua-audit keeps user state: the cache database and converted models.

Everything lives under one folder, ``$SUA_AUDIT_HOME`` when set, else the platform's user cache
directory (``~/.cache/sua-audit`` on Linux).
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "SUA_AUDIT_HOME"


def home() -> Path:
    """The folder for the cache database and converted models (not created here)."""
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("sua-audit", appauthor=False))


def default_cache_path() -> Path:
    """The default SQLite cache of model requests."""
    return home() / "cache.db"


def models_dir() -> Path:
    """Where converted local models are kept."""
    return home() / "models"
