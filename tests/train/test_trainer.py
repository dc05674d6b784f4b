"""Training steps on a tiny random model; checkpoints audited by the real `sua-audit run`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sua_audit.errors import ConfigError
from tests.support.cli import sua, sua_in_process
from tests.support.models import load_causal_lm
from tests.train.conftest import write_sentiment

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def _config(tiny_dir: Path, data: Path, out: Path, **kw: object):
    from sua_audit.train import TrainConfig

    base = dict(
        dataset=data,
        out=out,
        model=f"hf/{tiny_dir}",
        batch_size=4,
        perturbations="2",
        device="cpu",
        seed=3,
        lam=0.0,  # keep the hinge active on a near-uniform random model
    )
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def _batch_loss_of(model_dir: Path, config) -> dict[str, float]:
    """The loss of the whole (one-batch) training set under the weights in ``model_dir``."""
    from sua_audit.train.data import load_examples, variant_messages
    from sua_audit.train.forward import LabelScorer
    from sua_audit.train.trainer import _batch_loss

    examples, _ = load_examples(config.dataset)
    tok, model = load_causal_lm(model_dir)
    messages = variant_messages(examples, config.plan, config.seed)
    with torch.no_grad():
        return _batch_loss(LabelScorer(model, tok), examples, messages, config).floats()


@pytest.mark.parametrize("lora", [True, False], ids=["lora", "full"])
def test_one_step_changes_weights_and_lowers_the_batch_loss(
    tiny_dir: Path, tmp_path: Path, lora: bool
) -> None:
    from safetensors.torch import load_file

    from sua_audit.train import train

    data = write_sentiment(tmp_path / "train.jsonl", n=4)
    config = _config(tiny_dir, data, tmp_path / "ck", lora=lora, lr=5e-3, max_steps=1)
    before = _batch_loss_of(tiny_dir, config)
    result = train(config)
    assert result.summary["steps"] == 1
    after = _batch_loss_of(result.out, config)
    assert after["total"] < before["total"]
    # The recorded step-1 loss is the loss before the update, on the same batch.
    assert result.summary["loss_curve"][0]["total"] == pytest.approx(before["total"], rel=1e-4)
    old = load_file(tiny_dir / "model.safetensors")
    new = load_file(result.out / "model.safetensors")
    changed = [k for k in old if not torch.equal(old[k], new[k])]
    assert changed
    if lora:  # merged adapters touch only the targeted projections
        assert all("proj" in k for k in changed)
        assert "model.embed_tokens.weight" not in changed


def test_baseline_sees_the_same_batches_and_steps(tiny_dir: Path, tmp_path: Path) -> None:
    from sua_audit.train import train

    data = write_sentiment(tmp_path / "train.jsonl", n=6)
    common = dict(batch_size=2, epochs=2, lr=1e-3)
    sua = train(_config(tiny_dir, data, tmp_path / "sua", **common)).summary
    base = train(_config(tiny_dir, data, tmp_path / "base", baseline=True, **common)).summary
    assert sua["steps"] == base["steps"] == 6
    assert base["config"]["alpha"] == base["config"]["beta"] == 0.0
    assert base["mode"] == "baseline" and sua["mode"] == "sua-tr"
    # Same initial weights and the same first batch: the same cross-entropy at step 1.
    assert sua["loss_curve"][0]["ce"] == pytest.approx(base["loss_curve"][0]["ce"], rel=1e-6)
    assert base["loss_curve"][0]["sensitivity"] is None
    assert sua["loss_curve"][0]["sensitivity"] > 0
    assert sua["data"]["sha256"] == base["data"]["sha256"]


def test_epoch_zero_perturbations_are_the_audits(tmp_path: Path) -> None:
    """Epoch 0 draws exactly the variants `sua-audit run --seed S` audits; epoch 1 others."""
    import asyncio

    from sua_audit import tasks
    from sua_audit.dataset import iter_items
    from sua_audit.perturbation import perturb_item
    from sua_audit.train.data import epoch_seed, load_examples, training_plan, variant_messages

    data = write_sentiment(tmp_path / "d.jsonl", n=3)
    examples, _ = load_examples(data)
    plan = training_plan("4")
    ours = variant_messages(examples, plan, epoch_seed(7, 0))
    for item, msgs in zip(iter_items(data), ours, strict=True):
        variants = asyncio.run(perturb_item(item, k=4, seed=7))
        expected = [tasks.build_messages(item.task, v.fields, item.labels) for v in variants]
        assert msgs == expected
    assert variant_messages(examples, plan, epoch_seed(7, 1)) != ours


def test_checkpoint_is_audited_by_the_cli(tiny_dir: Path, tmp_path: Path) -> None:
    data = write_sentiment(tmp_path / "train.jsonl", n=4)
    ck = tmp_path / "ck"
    home = tmp_path / "home"
    train = sua(
        "train", "--model", f"hf/{tiny_dir}", "--dataset", str(data), "--out", str(ck),
        "--max-steps", "1", "-k", "2", "--device", "cpu", "--lr", "1e-3",
        home=home, timeout=None,
    )  # fmt: skip
    assert train.returncode == 0, train.stderr
    assert "step 1/1" in train.stderr
    assert not (tmp_path / "ck.tmp").exists()
    summary = json.loads((ck / "train_summary.json").read_text())
    assert summary["steps"] == 1 and len(summary["loss_curve"]) == 1
    config = json.loads((ck / "config.json").read_text())
    assert config["sua_tr_weights_sha256"] == summary["weights_sha256"]
    assert (ck / "tokenizer.json").is_file() and (ck / "chat_template.jinja").is_file()

    evalset = write_sentiment(tmp_path / "eval.jsonl", n=3)
    run = sua(
        "run", "--model", f"hf/{ck}", "--dataset", str(evalset), "--out",
        str(tmp_path / "run"), "--perturbations", "2", "--no-progress",
        home=home, timeout=None,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    rows = [json.loads(x) for x in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    assert [r["status"] for r in rows] == ["ok"] * 3
    assert all(len(r["variants"]) == 3 for r in rows)

    # The audit's clean distribution is the one training optimised (same prompt and scoring).
    from sua_audit.train.forward import LabelScorer

    tok, model = load_causal_lm(ck)
    from sua_audit import tasks

    labels = ("negative", "positive")
    msgs = [
        (tasks.build_messages("classification", {"input": r["input"]}, labels), labels)
        for r in rows
    ]
    with torch.no_grad():
        ours = [lp.exp().tolist() for lp in LabelScorer(model, tok).label_logprobs(msgs)]
    for r, p in zip(rows, ours, strict=True):
        assert [r["distribution"][lab] for lab in labels] == pytest.approx(p, abs=1e-5)

    again = sua_in_process(
        "train", "--model", f"hf/{tiny_dir}", "--dataset", str(data), "--out", str(ck),
        home=home,
    )  # fmt: skip
    assert again.returncode == 2 and "--overwrite" in again.stderr


def test_bad_settings_and_data_are_refused(tiny_dir: Path, tmp_path: Path) -> None:
    from sua_audit.train import train

    data = write_sentiment(tmp_path / "train.jsonl", n=2)
    with pytest.raises(ConfigError, match="rewriter"):
        _config(tiny_dir, data, tmp_path / "a", perturbations="paraphrase:2")
    with pytest.raises(ConfigError, match="--alpha"):
        _config(tiny_dir, data, tmp_path / "a", alpha=-1.0)
    with pytest.raises(ConfigError, match="--divergence"):
        _config(tiny_dir, data, tmp_path / "a", divergence="hellinger")
    qa = tmp_path / "qa.jsonl"
    qa.write_text(json.dumps({"id": "q", "input": "2+2?", "answers": ["4"]}) + "\n")
    with pytest.raises(ConfigError, match="classification and NLI"):
        train(_config(tiny_dir, qa, tmp_path / "b"))
    unlabelled = tmp_path / "u.jsonl"
    unlabelled.write_text(json.dumps({"id": "u", "input": "x", "labels": ["a", "b"]}) + "\n")
    with pytest.raises(ConfigError, match="no gold label"):
        train(_config(tiny_dir, unlabelled, tmp_path / "c"))
    with pytest.raises(ConfigError, match="local model"):
        train(_config(tiny_dir, data, tmp_path / "d", model="gpt-4o"))
    assert not any(p.name.startswith(("b", "c", "d")) for p in tmp_path.iterdir())
