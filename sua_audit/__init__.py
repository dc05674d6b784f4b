"""sua-audit: find inputs where a model's answer is unstable under meaning-preserving rewrites
while the model stays confident (Sensitivity–Uncertainty Alignment)."""

__version__ = "0.1.0"

__all__ = ["__version__"]
