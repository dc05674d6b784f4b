"""A tiny randomly initialised Llama with a word-level tokenizer built here (no downloads)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.models import tiny_llama_with_word_tokenizer


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random model directory (built once per session)."""
    return tiny_llama_with_word_tokenizer(tmp_path_factory.mktemp("tiny-llama"))


SENTIMENT = [
    ("it 's a charming and often affecting journey .", "positive"),
    ("bleak and desperate", "negative"),
    ("a very good movie", "positive"),
    ("an awful film", "negative"),
    ("great film , really", "positive"),
    ("bad , bad movie", "negative"),
]


def write_sentiment(
    path: Path, n: int = 4, labels: tuple[str, ...] = ("negative", "positive")
) -> Path:
    """A small SST-2-like classification set."""
    with path.open("w", encoding="utf-8") as f:
        for i, (text, label) in enumerate(SENTIMENT[:n]):
            row = {"id": f"s{i}", "task": "classification", "input": text, "labels": list(labels)}
            row["label"] = label if label in labels else labels[-1]
            f.write(json.dumps(row) + "\n")
    return path
