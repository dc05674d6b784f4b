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
import os
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
    sample_seed,
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


#: How prompts are written for models without a chat template (part of their cache identity).
TRANSCRIPT_FORMAT = "transcript-bos-v1"


def _has_chat_template(model_dir: Path) -> bool:
    """Whether the saved tokenizer carries a chat template (read from files, no import)."""
    if (model_dir / "chat_template.jinja").is_file() or (
        model_dir / "chat_template.json"
    ).is_file():
        return True
    config = model_dir / "tokenizer_config.json"
    if config.is_file():
        import json

        try:
            return bool(json.loads(config.read_text(encoding="utf-8")).get("chat_template"))
        except (OSError, ValueError):
            return False
    return False


def _cuda_possible() -> bool:
    """Whether a CUDA device could be present, decided without importing torch."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return False
    return Path("/proc/driver/nvidia").exists() or Path("/dev/nvidia0").exists()


def _resolve_device_dtype(device: str, dtype: str) -> tuple[str, str]:
    """Settle ``auto`` device and dtype; torch is imported only when a GPU may be present.

    On CPU the default is float32: its scores do not depend on which requests share a batch
    (differences ~1e-5 nats), whereas bf16 is about twice as fast on CPUs with AMX but moves a
    label log-probability by up to ~0.3 nats with the batch's shape, noise that would leak into
    the sensitivity S being measured. GPUs default to bf16 where supported, for throughput.
    """
    if device == "auto":
        device = "cpu"
        if _cuda_possible():
            import torch

            if torch.cuda.is_available():
                device = "cuda"
    if dtype == "auto":
        if device == "cpu":
            dtype = "float32"
        else:
            import torch

            dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    if dtype not in ("bfloat16", "float16", "float32"):
        raise ValueError(f"unknown dtype {dtype!r}")
    return device, dtype


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
        self.model_dir = Path(model_dir)
        if not (self.model_dir / "config.json").is_file():
            raise ModelLoadError(
                f"No transformers model at {self.model_dir} (config.json not found). "
                "Pass --model hf/<directory saved with save_pretrained>; hub ids cannot be "
                "downloaded here."
            )
        self.model = name or self.model_dir.name
        self.device, self.dtype = _resolve_device_dtype(device, dtype)
        self.batch_size = batch_size
        self.capabilities = Capabilities(
            logprobs=True, top_logprobs=True, n=False, seed=True, choice_scoring=True
        )
        # Everything above is cheap and names the outputs (the cache key). The weights load on
        # the first request, so a rerun answered wholly from the cache never imports torch.
        self._fingerprint = _fingerprint(self.model_dir)
        self._has_template = _has_chat_template(self.model_dir)
        self._load_lock = threading.Lock()
        self._loaded = False
        self.load_seconds: float | None = None
        self.forward_passes = 0
        self.generate_calls = 0

    def load(self) -> None:
        """Import torch and transformers, load the weights and start the worker (once)."""
        from sua_audit._locks import MODEL_LOAD_LOCK

        with MODEL_LOAD_LOCK, self._load_lock:
            if self._loaded:
                return
            try:
                import torch
                import transformers
            except ImportError as exc:
                raise MissingDependencyError("Local transformers models", "hf") from exc
            self._torch = torch
            t0 = time.perf_counter()
            try:
                self.tokenizer = transformers.AutoTokenizer.from_pretrained(self.model_dir)
                lm: Any = transformers.AutoModelForCausalLM.from_pretrained(
                    self.model_dir, dtype=getattr(torch, self.dtype)
                )
                self.lm = lm.to(self.device)
            except (OSError, ValueError) as exc:
                raise ModelLoadError(f"Could not load {self.model_dir}: {exc}") from exc
            self.lm.eval()
            self.load_seconds = time.perf_counter() - t0
            self._pad_id = self.tokenizer.pad_token_id
            if self._pad_id is None:
                self._pad_id = self.tokenizer.eos_token_id or 0
            self._queue: queue.Queue[_Job | None] = queue.Queue()
            self._worker = threading.Thread(target=self._work, name="sua-audit-hf", daemon=True)
            self._worker.start()
            self._loaded = True

    # -- Backend interface -------------------------------------------------------------------

    def identity(self) -> dict[str, Any]:
        """Model name, weights fingerprint and dtype: each changes the outputs."""
        ident = {
            "provider": self.provider,
            "model": self.model,
            "weights": self._fingerprint,
            "dtype": self.dtype,
        }
        if not self._has_template:
            # How a model without a chat template is prompted changes its outputs; name it
            # (models with a template keep their keys).
            ident["prompt_format"] = TRANSCRIPT_FORMAT
        return ident

    def describe(self) -> dict[str, Any]:
        """Identity plus where and how the model runs."""
        return {
            **super().describe(),
            "path": str(self.model_dir),
            "device": self.device,
            "batch_size": self.batch_size,
            "load_seconds": None if self.load_seconds is None else round(self.load_seconds, 2),
        }

    def key_payload(self, request: CompletionRequest) -> dict[str, Any]:
        """Exact choice scores ignore the sampling parameters: keep them out of the key."""
        payload = request.payload()
        if request.choices is not None:
            payload.pop("params", None)
            payload.pop("n", None)
        return payload

    def max_concurrency(self) -> int:
        """Keep a few batches queued so the worker never waits for the event loop."""
        return self.batch_size * 4

    async def complete(self, request: CompletionRequest) -> Completion:
        """Queue the request for the worker thread and wait for its batch."""
        if not self._loaded:
            await asyncio.to_thread(self.load)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Completion] = loop.create_future()
        self._queue.put(_Job(request, future, loop))
        return await future

    async def aclose(self) -> None:
        """Stop the worker thread (if the model was ever loaded)."""
        if not self._loaded:
            return
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
        """The first request's kind decides the batch; others of that kind join it.

        A batch holds at most ``batch_size`` rows: a scoring request is one row (its prompt),
        a generation request one row per answer (``n``).
        """
        first = pending[0].request
        scoring = first.choices is not None
        batch: list[_Job] = []
        rows = 0
        rest: deque[_Job] = deque()
        while pending:
            job = pending.popleft()
            req = job.request
            # Generation requests share a batch whatever their max_tokens: the batch runs to
            # the longest and each row is cut to its own limit (rewrites vary in length).
            same = (req.choices is not None) == scoring
            weight = 1 if scoring else max(1, req.n)
            if same and (not batch or rows + weight <= self.batch_size):
                batch.append(job)
                rows += weight
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
        bos = self.tokenizer.bos_token_id
        if not self._has_template and bos is not None and ids[:1] != [bos]:
            # A chat template writes its own start token; a bare transcript needs it, or a base
            # model such as Gemma answers with near-uniform noise (label mass ~1e-4).
            ids = [bos, *ids]
        return ids

    def _score_choices(self, requests: list[CompletionRequest]) -> list[Completion]:
        """Exact choice log-probabilities, the prompt computed once per request.

        Pass 1 runs the left-padded prompts (one row per request) and reads the first token of
        every choice from the last position. Only when some choice has more tokens does pass 2
        run those continuations on top of the prompts' key/value cache, one row per such
        choice. Labels are usually one token, so a batch is usually one forward pass over
        ``len(requests)`` rows instead of one row per (request, choice).
        """
        torch = self._torch
        prompts = [self._prompt_ids(r.messages) for r in requests]
        conts: list[list[list[int]]] = []
        for req in requests:
            assert req.choices is not None
            toks = [self.tokenizer.encode(c, add_special_tokens=False) for c in req.choices]
            for choice, t in zip(req.choices, toks, strict=True):
                if not t:
                    raise BackendError(f"choice {choice!r} tokenizes to nothing")
            conts.append(toks)
        multi = [(r, c) for r, toks in enumerate(conts) for c, t in enumerate(toks) if len(t) > 1]

        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, p in enumerate(prompts):  # left padding: every prompt ends at the last column
            ids[i, width - len(p) :] = torch.tensor(p)
            mask[i, width - len(p) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        ids, mask, positions = ids.to(self.device), mask.to(self.device), positions.to(self.device)
        base = getattr(self.lm, self.lm.base_model_prefix)
        head = self.lm.get_output_embeddings()
        first = base(
            input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=bool(multi)
        )
        self.forward_passes += 1
        first_lp = torch.log_softmax(head(first.last_hidden_state[:, -1]).float(), dim=-1)
        first_lp = first_lp.cpu()
        scores = [[float(first_lp[r, t[0]]) for t in toks] for r, toks in enumerate(conts)]

        if multi:
            owners = torch.tensor([r for r, _ in multi], device=self.device)
            cache = first.cache
            cache.reorder_cache(owners)  # one copy of its prompt's cache per multi-token choice
            feeds = [conts[r][c][:-1] for r, c in multi]  # each token predicts the next one
            cw = max(len(f) for f in feeds)
            ids2 = torch.full((len(feeds), cw), self._pad_id, dtype=torch.long)
            mask2 = torch.zeros((len(feeds), cw), dtype=torch.long)
            for i, f in enumerate(feeds):
                ids2[i, : len(f)] = torch.tensor(f)
                mask2[i, : len(f)] = 1
            ids2, mask2 = ids2.to(self.device), mask2.to(self.device)
            lens = torch.tensor([len(prompts[r]) for r, _ in multi], device=self.device)
            pos2 = lens[:, None] + torch.arange(cw, device=self.device)[None, :]
            hidden = base(
                input_ids=ids2,
                attention_mask=torch.cat([mask[owners], mask2], dim=1),
                position_ids=pos2,
                cache=cache,
            ).last_hidden_state
            self.forward_passes += 1
            row_idx, pos_idx, tok_ids = [], [], []
            for k, (r, c) in enumerate(multi):
                for j, tok in enumerate(conts[r][c][1:]):
                    row_idx.append(k)
                    pos_idx.append(j)
                    tok_ids.append(tok)
            picked = hidden[torch.tensor(row_idx), torch.tensor(pos_idx)]
            lp = torch.log_softmax(head(picked).float(), dim=-1)
            lp = lp[torch.arange(len(tok_ids)), torch.tensor(tok_ids)].cpu().tolist()
            for k, value in zip(row_idx, lp, strict=True):
                r, c = multi[k]
                scores[r][c] += value

        out: list[Completion] = []
        for r, row in enumerate(scores):
            out.append(
                Completion(
                    choice_logprobs=[v if math.isfinite(v) else -1e9 for v in row],
                    prompt_tokens=len(prompts[r]),
                    finish_reason="scored",
                    path="exact",
                )
            )
        return out

    def _generate(self, requests: list[CompletionRequest]) -> list[Completion]:
        """One ``generate`` call for every answer of every request (``n`` rows per request)."""
        torch = self._torch
        from transformers import GenerationConfig, LogitsProcessorList

        owners: list[int] = []  # request index of each row
        draws: list[tuple[float, float, int]] = []  # (temperature, top_p, seed) of each row
        prompts: list[list[int]] = []
        for r_i, req in enumerate(requests):
            prompt = self._prompt_ids(req.messages)
            prompts.append(prompt)
            for i in range(max(1, req.n)):
                owners.append(r_i)
                draws.append(
                    (
                        req.params.temperature,
                        req.params.top_p,
                        sample_seed(req.params.seed, req.sample_offset + i),
                    )
                )
        width = max(len(p) for p in prompts)
        ids = torch.full((len(owners), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(owners), width), dtype=torch.long)
        for row, r_i in enumerate(owners):  # left padding so every row continues at the end
            p = prompts[r_i]
            ids[row, width - len(p) :] = torch.tensor(p)
            mask[row, width - len(p) :] = 1
        sampler = _RowSampler(torch, draws)
        eos = self.tokenizer.eos_token_id
        config = GenerationConfig(
            # The batch runs to its longest request; each row is cut to its own limit below.
            max_new_tokens=max(r.params.max_tokens for r in requests),
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
        out = [
            Completion(prompt_tokens=len(prompts[r_i]), path="local")
            for r_i in range(len(requests))
        ]
        texts: list[list[str]] = [[] for _ in requests]
        for row, toks in enumerate(new):
            r_i = owners[row]
            toks = toks[: requests[r_i].params.max_tokens]
            finish = "length"
            if eos is not None and eos in toks:
                toks = toks[: toks.index(eos)]
                finish = "stop"
            texts[r_i].append(str(self.tokenizer.decode(toks, skip_special_tokens=True)))
            out[r_i].completion_tokens += len(toks) + (finish == "stop")
            if out[r_i].finish_reason is None:
                out[r_i].finish_reason = finish
        for comp, answers, req in zip(out, texts, requests, strict=True):
            comp.text = answers[0]
            if req.n > 1:
                comp.texts = answers
        return out


class _RowSampler:
    """Pick each row's next token with that row's own temperature, top-p and seeded generator.

    The chosen token keeps its score and every other token gets -inf, so greedy decoding in
    ``generate`` then emits exactly the sampled token.
    """

    def __init__(self, torch: Any, draws: list[tuple[float, float, int]]) -> None:
        self.torch = torch
        self.draws = draws
        self.generators = []
        for _, _, seed in draws:
            g = torch.Generator(device="cpu")
            g.manual_seed(seed)
            self.generators.append(g)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        torch = self.torch
        out = torch.full_like(scores, float("-inf"))
        for i, (temperature, top_p, _) in enumerate(self.draws):
            row = scores[i].float()
            if temperature <= 0:
                token = int(torch.argmax(row))
            else:
                probs = torch.softmax(row / temperature, dim=-1).cpu()
                if top_p < 1.0:
                    sorted_p, order = torch.sort(probs, descending=True)
                    keep = torch.cumsum(sorted_p, 0) - sorted_p < top_p
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
