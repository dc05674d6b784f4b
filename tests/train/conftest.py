"""A tiny randomly initialised Llama with a word-level tokenizer built here (no downloads)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

WORDS = (
    "text which label fits this best or answer with one word premise hypothesis what is the "
    "relation of to a it s charming and often affecting journey bleak desperate film movie good "
    "bad great awful very positive negative entailment neutral contradiction you are helpful "
    "user assistant system not really actually basically"
).split()

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tiny_model(path: Path, seed: int = 0) -> Path:
    """Save a 2-layer, hidden-32 Llama and a word-level tokenizer with a chat template."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")

    specials = ["<pad>", "<unk>", "<|im_start|>", "<|im_end|>"]
    words = sorted({w for w in WORDS} | {w.capitalize() for w in WORDS})
    vocab = {tok: i for i, tok in enumerate(specials + words + list(".,:?'!_\n"))}
    model = tokenizers.models.WordLevel(vocab=vocab, unk_token="<unk>")
    tok = tokenizers.Tokenizer(model)
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tok.add_special_tokens(specials)
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="<|im_end|>"
    )
    fast.chat_template = CHAT_TEMPLATE
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        pad_token_id=0,
        eos_token_id=3,
        bos_token_id=2,
    )
    transformers.LlamaForCausalLM(config).save_pretrained(path)
    fast.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random model directory (built once per session)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


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
