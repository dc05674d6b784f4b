"""Models for tests: a tiny random Llama saved to a folder, loaded back, or behind HFBackend.

One architecture (2 layers, hidden size 32) for every test that needs real weights but not a
real model: the backend tests give it the embedded model's tokenizer, the training tests a
word-level tokenizer built here (no downloads). Weights come from ``torch.manual_seed(seed)``,
so a folder built twice with the same arguments holds the same model.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

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

#: The embedded model's (SmolLM2) vocabulary size; its pad and end tokens are both id 2.
EMBEDDED_VOCAB_SIZE = 49152


def save_tiny_llama(path: Path, vocab_size: int, *, seed: int = 0, **token_ids: int) -> Path:
    """Save a randomly initialised 2-layer, hidden-32 Llama (weights only) into ``path``.

    ``token_ids`` are the config's ``pad_token_id``, ``eos_token_id`` and ``bos_token_id``.
    """
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")

    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        **token_ids,
    )
    transformers.LlamaForCausalLM(config).save_pretrained(path)
    return path


def tiny_llama_with_tokenizer_of(path: Path, model_dir: Path, *, seed: int = 0) -> Path:
    """A tiny Llama over the embedded model's vocabulary, with ``model_dir``'s tokenizer files."""
    save_tiny_llama(path, EMBEDDED_VOCAB_SIZE, seed=seed, pad_token_id=2, eos_token_id=2)
    for f in model_dir.iterdir():
        if f.name.startswith(("tokenizer", "special_tokens", "chat_template")):
            shutil.copy(f, path / f.name)
    return path


def tiny_llama_with_word_tokenizer(path: Path, *, seed: int = 0) -> Path:
    """A tiny Llama and a word-level tokenizer over :data:`WORDS` with a chat template."""
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
    save_tiny_llama(path, len(vocab), seed=seed, pad_token_id=0, eos_token_id=3, bos_token_id=2)
    fast.save_pretrained(path)
    return path


def load_causal_lm(path: Path) -> tuple[Any, Any]:
    """(tokenizer, model) of a model folder, in float32, as the training code loads them."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")

    tok = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    return tok, model


def hf_backend(path: Path, **kw: Any) -> Any:
    """The audit's HFBackend on a model folder, in float32 (exact comparisons need it)."""
    from sua_audit.backends.hf import HFBackend

    return HFBackend(path, dtype="float32", **kw)
