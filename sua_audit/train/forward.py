"""Differentiable label scoring: the audit's exact label distribution, with gradients.

The audit scores a classification or NLI variant in :mod:`sua_audit.backends.hf` as follows,
and this module repeats it step by step so that a trained checkpoint is judged on the very
quantity it was trained on:

1. the messages come from :func:`sua_audit.tasks.build_messages` (same prompt wording);
2. the prompt is the tokenizer's chat template with ``add_generation_prompt=True`` (a plain
   ``role: content`` transcript for models without one), encoded without special tokens;
3. each label's surface forms come from :func:`sua_audit.tasks.choice_table`; a form's
   log-probability is the sum of its tokens' log-probabilities after the prompt (full-vocabulary
   log-softmax), a label's is the log-sum-exp of its forms;
4. the distribution is the softmax over the labels.

Prompts are left-padded with explicit position ids, as the backend does, so padding changes
nothing. First tokens are read at the last position of one forward pass over the prompts; forms
of two or more tokens take a second pass over ``prompt + form[:-1]`` (the backend reuses the
prompt's key/value cache instead; the numbers are the same, the cost is not).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sua_audit import tasks
from sua_audit.backends.base import Message


def prompt_ids(tokenizer: Any, messages: Sequence[Message]) -> list[int]:
    """Token ids of the chat-templated prompt, exactly as ``HFBackend`` builds them."""
    chat = [{"role": m.role, "content": m.content} for m in messages]
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    else:
        text = "".join(f"{m.role}: {m.content}\n" for m in messages) + "assistant:"
    ids: list[int] = tokenizer.encode(text, add_special_tokens=False)
    return ids


def _left_pad(rows: Sequence[Sequence[int]], pad_id: int, device: Any) -> tuple[Any, Any, Any]:
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r) :] = torch.tensor(list(r), dtype=torch.long)
        mask[i, width - len(r) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids.to(device), mask.to(device), positions.to(device)


class LabelScorer:
    """Label log-probabilities of prompts under a causal LM, with gradients.

    Args:
        model: A transformers causal LM (or a peft wrapper of one).
        tokenizer: Its tokenizer (with the chat template the audit will use).
        device: Where the model lives.
    """

    def __init__(self, model: Any, tokenizer: Any, device: Any = "cpu") -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else (tokenizer.eos_token_id or 0)
        self._choice_cache: dict[tuple[str, ...], tuple[list[list[int]], list[int]]] = {}

    def _choices(self, labels: tuple[str, ...]) -> tuple[list[list[int]], list[int]]:
        if labels not in self._choice_cache:
            forms, owner = tasks.choice_table(labels)
            toks = [self.tokenizer.encode(f, add_special_tokens=False) for f in forms]
            for form, t in zip(forms, toks, strict=True):
                if not t:
                    raise ValueError(f"label form {form!r} tokenizes to nothing")
            self._choice_cache[labels] = (toks, owner)
        return self._choice_cache[labels]

    def _logits(self, ids: Any, mask: Any, positions: Any, keep: int) -> Any:
        out = self.model(
            input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep
        )
        return out.logits[:, -keep:].float()

    def label_logprobs(self, rows: Sequence[tuple[Sequence[Message], Sequence[str]]]) -> list[Any]:
        """Per row (messages, labels): the ``(|labels|,)`` log-softmax over the labels."""
        import torch

        prompts = [prompt_ids(self.tokenizer, msgs) for msgs, _ in rows]
        tables = [self._choices(tuple(labels)) for _, labels in rows]
        ids, mask, pos = _left_pad(prompts, self.pad_id, self.device)
        first = torch.log_softmax(self._logits(ids, mask, pos, 1)[:, -1], dim=-1)
        form_lp: list[list[Any]] = [
            [first[r, t[0]] for t in toks] for r, (toks, _) in enumerate(tables)
        ]
        multi = [
            (r, c) for r, (toks, _) in enumerate(tables) for c, t in enumerate(toks) if len(t) > 1
        ]
        if multi:
            seqs = [prompts[r] + tables[r][0][c][:-1] for r, c in multi]
            keep = max(len(tables[r][0][c]) - 1 for r, c in multi)
            ids2, mask2, pos2 = _left_pad(seqs, self.pad_id, self.device)
            lp2 = torch.log_softmax(self._logits(ids2, mask2, pos2, keep), dim=-1)
            for k, (r, c) in enumerate(multi):
                rest = tables[r][0][c][1:]
                start = keep - len(rest)  # rows end at the last column (left padding)
                picked = lp2[k, start + torch.arange(len(rest)), torch.tensor(rest)]
                form_lp[r][c] = form_lp[r][c] + picked.sum()
        out = []
        for r, (_, labels) in enumerate(rows):
            owner = tables[r][1]
            stacked = torch.stack(form_lp[r])
            per_label = torch.stack(
                [
                    torch.logsumexp(stacked[[i for i, o in enumerate(owner) if o == j]], dim=0)
                    for j in range(len(labels))
                ]
            )
            out.append(torch.log_softmax(per_label, dim=-1))
        return out
