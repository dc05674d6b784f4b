"""SUA-TR: fine-tune local models to be less sensitive-but-confident.

Loss = cross-entropy + α·S + β·[S − λH]_+ on the audit's own label distributions (same prompts,
same label scoring, same rule perturbations), so ``sua-audit run --model hf/OUT`` measures the
quantities the model was trained on. See docs/method.md ("SUA-TR").

Nothing here imports torch until training starts.
"""

from __future__ import annotations

from sua_audit.train.trainer import SUMMARY_FILE, TrainConfig, TrainResult, train

__all__ = ["SUMMARY_FILE", "TrainConfig", "TrainResult", "train"]
