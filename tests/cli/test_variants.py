"""Variant sets: `sua-audit perturb`, `run --variants`, rescore, and compare/gate refusals.

Everything runs on the fake backends: `fake/rewrite` writes the paraphrases (so that "no
rewriter call" means something) and `fake/echo` is the audited model.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli.test_run import _lines
from tests.conftest import EXAMPLE
from tests.support import cli

PLAN = "paraphrase:2,typo:2"


def sua(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return cli.sua(*args, home=home, env={"SUA_AUDIT_REWRITER_MODEL": None})


def _rows_by_model(cache: Path, model: str) -> int:
    db = sqlite3.connect(cache)
    try:
        query = "select count(*) from completions where model = ?"
        return int(db.execute(query, (model,)).fetchone()[0])
    finally:
        db.close()


@dataclass
class Built:
    root: Path
    home: Path
    variants: Path
    header: dict
    plain: Path
    plain_summary: dict
    on_set: Path
    on_set_summary: dict
    on_set_cache: Path
    plain_cache: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("variant-sets")
    home = root / "home"
    variants = root / "set" / "variants.jsonl"
    variants.parent.mkdir()
    made = sua(
        "perturb", "--dataset", str(EXAMPLE), "--perturbations", PLAN,
        "--rewriter-model", "fake/rewrite", "--cache", str(root / "perturb.db"),
        "--out", str(variants), "--json", home=home,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    plain = sua(
        "run", "--model", "fake/echo", "--dataset", str(EXAMPLE), "--perturbations", PLAN,
        "--rewriter-model", "fake/rewrite", "--cache", str(root / "plain.db"),
        "--out", str(root / "plain"), "--json", home=home,
    )  # fmt: skip
    assert plain.returncode == 0, plain.stderr
    on_set = sua(
        "run", "--model", "fake/echo", "--dataset", str(EXAMPLE), "--variants", str(variants),
        "--cache", str(root / "on-set.db"), "--out", str(root / "on-set"), "--json", home=home,
    )  # fmt: skip
    assert on_set.returncode == 0, on_set.stderr
    return Built(
        root=root,
        home=home,
        variants=variants,
        header=json.loads(made.stdout),
        plain=root / "plain",
        plain_summary=json.loads(plain.stdout),
        on_set=root / "on-set",
        on_set_summary=json.loads(on_set.stdout),
        on_set_cache=root / "on-set.db",
        plain_cache=root / "plain.db",
    )


def test_perturb_writes_header_items_and_provenance(built: Built) -> None:
    from sua_audit.variants import FORMAT_VERSION, HEADER_KEY, open_variant_set

    lines = built.variants.read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])
    assert header == built.header
    assert header[HEADER_KEY] == FORMAT_VERSION
    assert header["plan"] == PLAN and header["seed"] == 0
    assert header["rewriter_model"] == "fake/rewrite"
    assert header["rewriter"]["provider"] == "fake" and header["rewriter"]["model"] == "rewrite"
    assert header["templates"]["paraphrase"].startswith("paraphrase/default@")
    assert len(header["template_sha256"]["paraphrase"]) == 64
    assert header["dataset"]["sha256"] == built.plain_summary["dataset"]["sha256"]
    assert header["n_items"] == len(lines) - 1 == 13
    assert header["rewriter_calls"] > 0
    # The content hash is the one the reader computes from the item lines.
    assert open_variant_set(built.variants).content_sha256 == header["content_sha256"]
    kinds: set[str] = set()
    for line in lines[1:]:
        item = json.loads(line)
        assert set(item) == {"id", "item_sha256", "variants_sha256", "variants"}
        assert item["variants"][0]["kind"] == "clean"
        for v in item["variants"]:
            kinds.add(v["kind"])
            if v["kind"] == "paraphrase":
                assert v["rewriter"] == "fake/rewrite"
                assert v["template"] == header["templates"]["paraphrase"]
                assert v["template_sha256"] == header["template_sha256"]["paraphrase"]
                # One verdict per rewritten field (NLI: premise and hypothesis apart).
                fields = [m["field"] for m in v["meaning"]]
                assert fields in (["input"], ["premise", "hypothesis"])
                assert "accepted" in {m["verdict"] for m in v["meaning"]}
                for m in v["meaning"]:
                    assert m["verdict"] in ("accepted", "original")
                    assert isinstance(m["score"], float) == (m["verdict"] == "accepted")
            elif v["kind"] == "typo":
                assert "rewriter" not in v and v["detail"].startswith("typo")
    assert kinds == {"clean", "paraphrase", "typo"}


def test_run_on_the_set_reproduces_the_plain_run_without_a_rewriter(built: Built) -> None:
    plain, on_set = built.plain_summary, built.on_set_summary
    # The plain run did call the rewriter: "no rewriter call" below is a real difference.
    assert plain["rewriter_calls"] > 0
    assert _rows_by_model(built.plain_cache, "rewrite") > 0
    assert on_set["rewriter_calls"] is None and on_set["rewriter_cache_hits"] is None
    assert _rows_by_model(built.on_set_cache, "rewrite") == 0
    assert on_set["model_calls"] == plain["model_calls"]
    # Same variants, same answers: the very same rows and scores.
    assert _lines(built.on_set / "results.jsonl") == _lines(built.plain / "results.jsonl")
    assert on_set["results"]["mean_scores"] == plain["results"]["mean_scores"]
    assert on_set["variants"] == {
        "path": str(built.variants.resolve()),
        "sha256": built.header["content_sha256"],
        "n_items": 13,
        "plan": PLAN,
    }
    assert plain["variants"] is None
    assert on_set["config"]["perturbations"] == PLAN
    assert on_set["config"]["rewriter_model"] is None  # nothing was rewritten
    pert = on_set["results"]["perturbation"]
    assert pert["variant_set"]["sha256"] == built.header["content_sha256"]
    assert pert["templates"] == built.header["templates"]


def test_second_run_with_an_empty_cache_gives_identical_rows(built: Built) -> None:
    out, cache = built.root / "again", built.root / "empty.db"
    assert not cache.exists()
    res = sua(
        "run", "--model", "fake/echo", "--dataset", str(EXAMPLE), "--variants",
        str(built.variants), "--cache", str(cache), "--out", str(out), "--json", home=built.home,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["cache_hits"] == 0 and summary["model_calls"] > 0
    assert summary["rewriter_calls"] is None
    assert _lines(out / "results.jsonl") == _lines(built.on_set / "results.jsonl")


def test_run_on_a_set_never_builds_nor_calls_a_rewriter(
    built: Built, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """In process: building any backend, or perturbing any item, fails the test."""
    import sua_audit.auditing as audit_module
    import sua_audit.backends as backends
    from sua_audit.backends.fake import FakeBackend
    from sua_audit.runner import audit, make_config
    from sua_audit.variants import variant_options

    def no_backend(spec: str, **_: object) -> object:
        raise AssertionError(f"a backend was built for {spec}")

    async def no_perturbing(*_: object, **__: object) -> object:
        raise AssertionError("variants were made instead of read")

    monkeypatch.setattr(backends, "get_backend", no_backend)
    monkeypatch.setattr(audit_module, "perturb_item", no_perturbing)
    options = variant_options({"variants": str(built.variants), "model": "fake/echo"})
    config = make_config(EXAMPLE, **options)
    model = FakeBackend("echo")
    summary = audit(config, cache_path=tmp_path / "c.db", out_dir=tmp_path / "o", backend=model)
    assert summary["rewriter_calls"] is None
    assert summary["variants"]["sha256"] == built.header["content_sha256"]
    # The audited model saw exactly the set's texts.
    sent = {m.content for r in model.history for m in r.messages}
    texts = [
        v["text"]
        for line in built.variants.read_text(encoding="utf-8").splitlines()[1:]
        for v in json.loads(line)["variants"]
    ]
    assert all(any(t in s for s in sent) for t in texts)


def _edit_variant_text(src: Path, dst: Path, line_no: int, suffix: str) -> str:
    lines = src.read_text(encoding="utf-8").splitlines()
    item = json.loads(lines[line_no - 1])
    item["variants"][1]["text"] += suffix
    lines[line_no - 1] = json.dumps(item, ensure_ascii=False)
    dst.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return item["variants"][1]["text"]


def test_edited_variant_is_refused_then_rehashed_and_compared_only_when_allowed(
    built: Built, tmp_path: Path
) -> None:
    edited = tmp_path / "edited.jsonl"
    text = _edit_variant_text(built.variants, edited, 5, " Really.")
    out = tmp_path / "out"
    args = ["run", "--model", "fake/echo", "--dataset", str(EXAMPLE), "--variants", str(edited)]
    res = sua(*args, "--cache", str(tmp_path / "c.db"), "--out", str(out), home=built.home)
    assert res.returncode == 2, res.stderr
    assert f"{edited}:5: variants: were edited after the set was built" in res.stderr
    assert "rehash-variants" in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not out.exists() and not (tmp_path / "c.db").exists()  # before any model call

    rehashed = sua("rehash-variants", str(edited), home=built.home)
    assert rehashed.returncode == 0, rehashed.stderr
    header = json.loads(edited.read_text(encoding="utf-8").splitlines()[0])
    assert header["edited"] is True and header["built_sha256"] == built.header["content_sha256"]
    assert header["content_sha256"] != built.header["content_sha256"]
    res = sua(*args, "--cache", str(tmp_path / "c.db"), "--out", str(out), home=built.home)
    assert res.returncode == 0, res.stderr
    rows = _lines(out / "results.jsonl")
    assert rows[3]["variants"][1]["text"] == text  # line 5 holds the fourth item

    # compare / gate: runs on different sets are refused unless allowed.
    compare = sua("compare", str(built.on_set), str(out), home=built.home)
    assert compare.returncode == 2, compare.stdout + compare.stderr
    assert "different variant sets" in compare.stderr and "--allow-different-variants" in (
        compare.stderr
    )
    assert compare.stdout == ""
    allowed = sua(
        "compare", str(built.on_set), str(out), "--allow-different-variants", home=built.home
    )
    assert allowed.returncode == 0, allowed.stderr
    assert "audited on different variant sets (allowed by" in allowed.stdout  # said, not hidden
    checklist = tmp_path / "gate.toml"
    checklist.write_text("[limits]\nmin_accuracy = 0\n[baseline]\nmax_drop_accuracy = 1\n")
    gate = ["gate", str(out), "--checklist", str(checklist), "--baseline", str(built.on_set)]
    refused = sua(*gate, home=built.home)
    assert refused.returncode == 2 and "different variant sets" in refused.stderr
    assert sua(*gate, "--allow-different-variants", home=built.home).returncode == 0


def test_compare_and_gate_plain_run_against_run_on_a_set(built: Built, tmp_path: Path) -> None:
    compare = sua("compare", str(built.plain), str(built.on_set), home=built.home)
    assert compare.returncode == 2
    assert "variants made at run time" in compare.stderr and "variant set" in compare.stderr
    same = sua("compare", str(built.on_set), str(built.root / "again"), home=built.home)
    if (built.root / "again").is_dir():  # made by the empty-cache test when it ran first
        assert same.returncode == 0, same.stderr
        assert "Every run audited the variant set" in same.stdout
        assert f"(sha256 {built.header['content_sha256'][:12]}, plan" in same.stdout
    checklist = tmp_path / "gate.toml"
    checklist.write_text("[limits]\nmin_accuracy = 0\n[baseline]\nmax_drop_accuracy = 1\n")
    gate = ["gate", str(built.on_set), "--checklist", str(checklist)]
    assert sua(*gate, home=built.home).returncode == 0  # no baseline: nothing to compare
    refused = sua(*gate, "--baseline", str(built.plain), home=built.home)
    assert refused.returncode == 2 and "different variant sets" in refused.stderr
    ok = sua(*gate, "--baseline", str(built.plain), "--allow-different-variants", home=built.home)
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_rescore_rereads_the_set_and_checks_its_hash(built: Built, tmp_path: Path) -> None:
    out = tmp_path / "rescored"
    res = sua(
        "rescore", str(built.on_set), "--lambda", "0.5", "--cache", str(built.on_set_cache),
        "--out", str(out), "--json", home=built.home,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["model_calls"] == 0 and summary["rewriter_calls"] is None
    assert summary["variants"]["sha256"] == built.header["content_sha256"]
    before, after = _lines(built.on_set / "results.jsonl"), _lines(out / "results.jsonl")
    assert [r["sensitivity"] for r in after] == [r["sensitivity"] for r in before]
    # The set moved: --variants says where; a different (rehashed) set is refused.
    moved = tmp_path / "moved.jsonl"
    _edit_variant_text(built.variants, moved, 3, " Indeed.")
    assert sua("rehash-variants", str(moved), home=built.home).returncode == 0
    other = sua(
        "rescore", str(built.on_set), "--cache", str(built.on_set_cache), "--variants",
        str(moved), "--out", str(tmp_path / "r2"), home=built.home,
    )  # fmt: skip
    assert other.returncode == 3, other.stderr
    assert "not the one the run audited" in other.stderr


def test_dataset_items_must_match_the_set(built: Built, tmp_path: Path) -> None:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    changed = [json.loads(x) for x in lines]
    changed[3]["input"] += " (edited)"
    data = tmp_path / "changed.jsonl"
    data.write_text("\n".join(json.dumps(x) for x in changed) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    res = sua(
        "run", "--model", "fake/echo", "--dataset", str(data), "--variants", str(built.variants),
        "--cache", str(tmp_path / "c.db"), "--out", str(out), home=built.home,
    )  # fmt: skip
    assert res.returncode == 2, res.stderr
    item_id = changed[3]["id"]
    assert f'{built.variants}:5: item_sha256: item "{item_id}" changed' in res.stderr
    assert f"{data}:4" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not out.exists() and not (tmp_path / "c.db").exists()
    # A plan other than the set's is refused and named; the set's own plan is fine.
    res = sua(
        "run", "--model", "fake/echo", "--dataset", str(EXAMPLE), "--variants",
        str(built.variants), "--perturbations", "4", "--out", str(out), home=built.home,
    )  # fmt: skip
    assert res.returncode == 2 and f"({PLAN})" in res.stderr and "--perturbations 4" in res.stderr
    res = sua(
        "run", "--model", "fake/echo", "--dataset", str(EXAMPLE), "--variants",
        str(built.variants), "--rewriter-model", "fake/other", "--out", str(out), home=built.home,
    )  # fmt: skip
    assert res.returncode == 2 and "--rewriter-model has no effect with --variants" in res.stderr


# -- In process: the reader's checks, one bad file at a time ----------------------------------


def _item(lines: list[str], n: int) -> dict:
    return json.loads(lines[n - 1])


def _put(lines: list[str], n: int, item: dict) -> None:
    lines[n - 1] = json.dumps(item, ensure_ascii=False)


def _bad_json(lines: list[str]) -> None:
    lines[2] = '{"id": "x", '


def _missing_text(lines: list[str]) -> None:
    item = _item(lines, 3)
    del item["variants"][1]["text"]
    _put(lines, 3, item)


def _index_is_a_string(lines: list[str]) -> None:
    item = _item(lines, 3)
    item["variants"][2]["index"] = "2"
    _put(lines, 3, item)


def _unknown_kind(lines: list[str]) -> None:
    item = _item(lines, 3)
    item["variants"][1]["kind"] = "frobnicate"
    _put(lines, 3, item)


def _no_header(lines: list[str]) -> None:
    del lines[0]


def _version_2(lines: list[str]) -> None:
    header = json.loads(lines[0])
    header["sua_audit_variants"] = 2
    lines[0] = json.dumps(header)


def _line_removed(lines: list[str]) -> None:
    del lines[5]


def _lines_swapped(lines: list[str]) -> None:
    lines[2], lines[3] = lines[3], lines[2]


def _edited_text(lines: list[str]) -> None:
    item = _item(lines, 3)
    item["variants"][2]["text"] = "Something else entirely?"
    _put(lines, 3, item)


def _unknown_field(lines: list[str]) -> None:
    item = _item(lines, 3)
    item["variants"][1]["txt"] = "typo of a key"
    _put(lines, 3, item)


@pytest.mark.parametrize(
    ("edit", "where"),
    [
        (_bad_json, ":3: (line): is not valid JSON"),
        (_missing_text, ":3: variants[1].text: is missing"),
        (_index_is_a_string, ":3: variants[2].index: is a string, not an integer"),
        (_unknown_kind, ':3: variants[1].kind: unknown kind "frobnicate"'),
        (_no_header, ":1: (header): line 1 is an item line: the header is missing"),
        (_version_2, ":1: sua_audit_variants: format version 2 is not supported"),
        (_line_removed, ":1: n_items: the header counts 13 items, the file has 12"),
        (_lines_swapped, ":1: content_sha256: the item lines hash to"),
        (_edited_text, ":3: variants: were edited after the set was built"),
        (_unknown_field, ":3: variants[1].txt: is not a variant field"),
    ],
)
def test_bad_variant_files(built: Built, tmp_path: Path, edit, where: str) -> None:
    from sua_audit.errors import DatasetError
    from sua_audit.variants import open_variant_set

    lines = built.variants.read_text(encoding="utf-8").splitlines()
    edit(lines)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError) as caught:
        open_variant_set(bad)
    assert f"{bad}{where}" in str(caught.value)
    assert caught.value.exit_code == 2


def test_empty_and_missing_files(tmp_path: Path) -> None:
    from sua_audit.errors import DatasetError
    from sua_audit.variants import open_variant_set, read_header

    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    for reader in (open_variant_set, read_header):
        with pytest.raises(DatasetError, match=r"empty\.jsonl:0: \(file\): is empty"):
            reader(empty)
        with pytest.raises(DatasetError, match="does not exist"):
            reader(tmp_path / "none.jsonl")


def test_gold_fixes_keep_the_set_valid_and_new_items_are_named(
    built: Built, tmp_path: Path
) -> None:
    from sua_audit.errors import DatasetError
    from sua_audit.variants import match_dataset, open_variant_set

    rows = [json.loads(x) for x in EXAMPLE.read_text(encoding="utf-8").splitlines()]
    qa = next(r for r in rows if r.get("task") == "qa" and r.get("answers"))
    qa["answers"] = [*qa["answers"], "another answer"]
    data = tmp_path / "gold.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    variant_set = open_variant_set(built.variants)
    match_dataset(variant_set, data)  # variants depend on the text, not on gold
    rows.append({"id": "new-1", "input": "What is 1 + 1?", "answers": ["2"]})
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=rf'{data}:14: id: item "new-1" has no variants'):
        match_dataset(variant_set, data)
    match_dataset(variant_set, data, limit=5)  # the first five items are in the set


def test_perturb_refuses_bad_input_and_writes_nothing(built: Built, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "input": ""}\n')
    out = tmp_path / "v.jsonl"
    res = sua("perturb", "--dataset", str(bad), "--out", str(out), home=built.home)
    assert res.returncode == 2 and f"{bad}:1: input" in res.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]


def test_perturb_builds_what_run_perturbs(built: Built) -> None:
    """The set's variants are perturb_item's, item by item (rule kinds: no rewriter)."""
    from sua_audit.auditing import perturb_context
    from sua_audit.dataset import iter_items
    from sua_audit.perturbation import perturb_item
    from sua_audit.runner import make_config
    from sua_audit.variants import open_variant_set

    config = make_config(EXAMPLE, perturbations="typo:2,word:1", seed=7)
    out = built.root / "rules.jsonl"
    res = sua(
        "perturb", "--dataset", str(EXAMPLE), "--perturbations", "typo:2,word:1", "--seed", "7",
        "--out", str(out), "--cache-mode", "off", home=built.home,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    stored = list(open_variant_set(out).iter_variants())
    context = perturb_context(config, None)
    for item, (entry, variants) in zip(iter_items(EXAMPLE), stored, strict=True):
        made = asyncio.run(perturb_item(item, seed=7, slots=config.plan.slots, context=context))
        assert entry.id == item.id
        assert [v.to_dict() for v in variants] == [v.to_dict() for v in made]
    header = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert header["rewriter_model"] is None and header["seed"] == 7
