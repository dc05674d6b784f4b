"""Local transformers models (``hf/<dir>`` and the embedded default), on CPU or GPU.

Requests from many coroutines are gathered by one worker thread into batches:

* choice scoring runs ONE forward pass per batch over every (request, choice) row and reads the
  log-probability of each choice's tokens after the chat-templated prompt, so a label
  distribution is exact, not sampled;
* generation runs one ``generate`` call per batch; each row is sampled with its own seeded
  ``torch.Generator`` (through a logits processor that picks the token and masks the rest), so a
  sample depends on its seed, not on which other requests happened to share its batch.

torch and transformers are imported only when this module is used.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from sua_audit.backends.base import (
    Backend,
    Capabilities,
    Completion,
    CompletionRequest,
    Message,
)
from sua_audit.errors import BackendError, MissingDependencyError, ModelLoadError

logger = logging.getLogger(__name__)

_GATHER_SECONDS = 0.005  # wait this long for more requests before running a partial batch


@dataclass(slots=True)
class _Job:
    request: CompletionRequest
    future: asyncio.Future[Completion]
    loop: asyncio.AbstractEventLoop


def _fingerprint(model_dir: Path) -> str:
    """Name the weights without reading them all: config hash plus weight file sizes."""
    h = hashlib.sha256()
    config = model_dir / "config.json"
    if config.is_file():
        h.update(config.read_bytes())
    for f in sorted(model_dir.glob("*.safetensors")) + sorted(model_dir.glob("*.bin")):
        h.update(f"{f.name}:{f.stat().st_size}".encode())
    return "sha256:" + h.hexdigest()[:16]


class HFBackend(Backend):
    """A local transformers causal LM."""

    provider: ClassVar[str] = "hf"

    def __init__(
        self,
        model_dir: str | Path,
        *,
        name: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 16,
    ) -> None:
        try:
            import torch
            import transformers
        except ImportError as exc:
            raise MissingDependencyError("Local transformers models", "hf") from exc
        self._torch = torch
        self.model_dir = Path(model_dir)
        if not (self.model_dir / "config.json").is_file():
            raise ModelLoadError(
                f"No transformers model at {self.model_dir} (config.json not found). "
                "Pass --model hf/<directory saved with save_pretrained>; hub ids cannot be "
                "downloaded here."
            )
        self.model = name or self.model_dir.name
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        if dtype == "auto":
            use_bf16 = device == "cpu" or (
                device.startswith("cuda") and torch.cuda.is_bf16_supported()
            )
            dtype = "bfloat16" if use_bf16 else "float32"
        if dtype not in ("bfloat16", "float16", "float32"):
            raise ValueError(f"unknown dtype {dtype!r}")
        self.dtype = dtype
        self.batch_size = batch_size
        self.capabilities = Capabilities(
            logprobs=True, top_logprobs=True, n=False, seed=True, choice_scoring=True
        )
        t0 = time.perf_counter()
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(self.model_dir)
            self.lm = transformers.AutoModelForCausalLM.from_pretrained(
                self.model_dir, dtype=getattr(torch, dtype)
            ).to(device)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"Could not load {self.model_dir}: {exc}") from exc
        self.lm.eval()
        self.load_seconds = time.perf_counter() - t0
        self._fingerprint = _fingerprint(self.model_dir)
        self._pad_id = self.tokenizer.pad_token_id
        if self._pad_id is None:
            self._pad_id = self.tokenizer.eos_token_id or 0
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._worker = threading.Thread(target=self._work, name="sua-audit-hf", daemon=True)
        self._worker.start()
        self.forward_passes = 0
        self.generate_calls = 0

    # -- Backend interface -------------------------------------------------------------------

    def identity(self) -> dict[str, Any]:
        """Model name, weights fingerprint and dtype: each changes the outputs."""
        return {
            "provider": self.provider,
            "model": self.model,
            "weights": self._fingerprint,
            "dtype": self.dtype,
        }

    def describe(self) -> dict[str, Any]:
        """Identity plus where and how the model runs."""
        return {
            **super().describe(),
            "path": str(self.model_dir),
            "device": self.device,
            "batch_size": self.batch_size,
            "load_seconds": round(self.load_seconds, 2),
        }

    def max_concurrency(self) -> int:
        """Keep a few batches queued so the worker never waits for the event loop."""
        return self.batch_size * 4

    async def complete(self, request: CompletionRequest) -> Completion:
        """Queue the request for the worker thread and wait for its batch."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Completion] = loop.create_future()
        self._queue.put(_Job(request, future, loop))
        return await future

    async def aclose(self) -> None:
        """Stop the worker thread."""
        self._queue.put(None)
        await asyncio.to_thread(self._worker.join, 10)

    # -- worker ------------------------------------------------------------------------------

    def _work(self) -> None:
        pending: deque[_Job] = deque()
        stopping = False
        while True:
            if not pending:
                job = self._queue.get()
                if job is None:
                    return
                pending.append(job)
            deadline = time.monotonic() + _GATHER_SECONDS
            while len(pending) < self.batch_size * 2:
                remaining = deadline - time.monotonic()
                try:
                    if remaining > 0:
                        job = self._queue.get(timeout=remaining)
                    else:
                        job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                    break
                pending.append(job)
            self._run_batch(self._take_batch(pending))
            if stopping:
                for job in pending:
                    self._fail(job, BackendError("The model worker was stopped."))
                return

    def _take_batch(self, pending: deque[_Job]) -> list[_Job]:
        """The first request's kind decides the batch; others of that kind join it."""
        first = pending[0].request
        scoring = first.choices is not None
        batch: list[_Job] = []
        rest: deque[_Job] = deque()
        while pending:
            job = pending.popleft()
            same = (job.request.choices is not None) == scoring and (
                scoring or job.request.params.max_tokens == first.params.max_tokens
            )
            if same and len(batch) < self.batch_size:
                batch.append(job)
            else:
                rest.append(job)
        pending.extend(rest)
        return batch

    def _run_batch(self, batch: list[_Job]) -> None:
        t0 = time.perf_counter()
        try:
            with self._torch.inference_mode():
                if batch[0].request.choices is not None:
                    results = self._score_choices([j.request for j in batch])
                else:
                    results = self._generate([j.request for j in batch])
        except Exception as exc:  # noqa: BLE001 - delivered to every waiting coroutine
            logger.exception("local model batch failed")
            err = BackendError(f"The local model failed on a batch: {exc}")
            for job in batch:
                self._fail(job, err)
            return
        per_request_ms = (time.perf_counter() - t0) * 1000 / len(batch)
        for job, result in zip(batch, results, strict=True):
            result.latency_ms = per_request_ms
            job.loop.call_soon_threadsafe(_resolve, job.future, result)

    @staticmethod
    def _fail(job: _Job, exc: BaseException) -> None:
        job.loop.call_soon_threadsafe(_reject, job.future, exc)

    # -- model work (worker thread only) -----------------------------------------------------

    def _prompt_ids(self, messages: tuple[Message, ...]) -> list[int]:
        chat = [{"role": m.role, "content": m.content} for m in messages]
        if getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(
                chat, tokenize=False, add_generation_prompt=True
            )
        else:  # base models without a chat template: a plain transcript
            text = "".join(f"{m.role}: {m.content}\n" for m in messages) + "assistant:"
        ids: list[int] = self.tokenizer.encode(text, add_special_tokens=False)
        return ids

    def _score_choices(self, requests: list[CompletionRequest]) -> list[Completion]:
        torch = self._torch
        rows: list[list[int]] = []
        spans: list[tuple[int, int]] = []  # (start, length) of the choice tokens in each row
        owners: list[int] = []
        prompt_lens: list[int] = []
        for r_i, req in enumerate(requests):
            prompt = self._prompt_ids(req.messages)
            prompt_lens.append(len(prompt))
            assert req.choices is not None
            for choice in req.choices:
                cont = self.tokenizer.encode(choice, add_special_tokens=False)
                if not cont:
                    raise BackendError(f"choice {choice!r} tokenizes to nothing")
                rows.append(prompt + cont)
                spans.append((len(prompt), len(cont)))
                owners.append(r_i)
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):  # right padding: positions of real tokens are unchanged
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        base = getattr(self.lm, self.lm.base_model_prefix)
        hidden = base(input_ids=ids, attention_mask=mask).last_hidden_state
        self.forward_passes += 1
        # Only the positions that predict choice tokens go through the vocabulary projection:
        # projecting every position would need rows x width x vocab floats.
        row_idx, pos_idx, tok_ids = [], [], []
        for i, (start, length) in enumerate(spans):
            for j in range(length):
                row_idx.append(i)
                pos_idx.append(start + j - 1)
                tok_ids.append(rows[i][start + j])
        picked = hidden[torch.tensor(row_idx), torch.tensor(pos_idx)]
        logits = self.lm.get_output_embeddings()(picked).float()
        token_lp = torch.log_softmax(logits, dim=-1)
        token_lp = token_lp[torch.arange(len(tok_ids)), torch.tensor(tok_ids)].cpu().tolist()
        choice_lp = [0.0] * len(rows)
        for i, lp in zip(row_idx, token_lp, strict=True):
            choice_lp[i] += lp
        out = [Completion(choice_logprobs=[]) for _ in requests]
        for i, owner in enumerate(owners):
            lp = choice_lp[i]
            out[owner].choice_logprobs.append(lp if math.isfinite(lp) else -1e9)  # type: ignore[union-attr]
        for r_i, comp in enumerate(out):
            comp.prompt_tokens = prompt_lens[r_i]
            comp.finish_reason = "scored"
        return out

    def _generate(self, requests: list[CompletionRequest]) -> list[Completion]:
        torch = self._torch
        from transformers import GenerationConfig, LogitsProcessorList

        prompts = [self._prompt_ids(r.messages) for r in requests]
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, p in enumerate(prompts):  # left padding so every row continues at the end
            ids[i, width - len(p) :] = torch.tensor(p)
            mask[i, width - len(p) :] = 1
        sampler = _RowSampler(torch, requests)
        eos = self.tokenizer.eos_token_id
        config = GenerationConfig(
            max_new_tokens=requests[0].params.max_tokens,
            do_sample=False,
            pad_token_id=self._pad_id,
            eos_token_id=eos,
        )
        generated = self.lm.generate(
            input_ids=ids.to(self.device),
            attention_mask=mask.to(self.device),
            generation_config=config,
            logits_processor=LogitsProcessorList([sampler]),
        )
        self.generate_calls += 1
        new = generated[:, width:].cpu().tolist()
        out: list[Completion] = []
        for i, toks in enumerate(new):
            finish = "length"
            if eos is not None and eos in toks:
                toks = toks[: toks.index(eos)]
                finish = "stop"
            text = self.tokenizer.decode(toks, skip_special_tokens=True)
            out.append(
                Completion(
                    text=text,
                    prompt_tokens=len(prompts[i]),
                    completion_tokens=len(toks) + (finish == "stop"),
                    finish_reason=finish,
                )
            )
        return out


class _RowSampler:
    """Pick each row's next token with that row's own temperature, top-p and seeded generator.

    The chosen token keeps its score and every other token gets -inf, so greedy decoding in
    ``generate`` then emits exactly the sampled token.
    """

    def __init__(self, torch: Any, requests: list[CompletionRequest]) -> None:
        self.torch = torch
        self.params = [r.params for r in requests]
        self.generators = []
        for r in requests:
            g = torch.Generator(device="cpu")
            g.manual_seed(r.params.seed if r.params.seed is not None else 0)
            self.generators.append(g)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        torch = self.torch
        out = torch.full_like(scores, float("-inf"))
        for i, params in enumerate(self.params):
            row = scores[i].float()
            if params.temperature <= 0:
                token = int(torch.argmax(row))
            else:
                probs = torch.softmax(row / params.temperature, dim=-1).cpu()
                if params.top_p < 1.0:
                    sorted_p, order = torch.sort(probs, descending=True)
                    keep = torch.cumsum(sorted_p, 0) - sorted_p < params.top_p
                    probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_p[keep])
                token = int(torch.multinomial(probs, 1, generator=self.generators[i]))
            out[i, token] = 0.0
        return out


def _resolve(future: asyncio.Future[Completion], result: Completion) -> None:
    if not future.done():
        future.set_result(result)


def _reject(future: asyncio.Future[Completion], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
