"""``sua-audit backends``: the static listing, and --probe against real loopback servers."""

from __future__ import annotations

import json

import pytest

from sua_audit.cli import backends as backends_cli
from tests.support.cli import sua
from tests.support.stub_openai import StubServer


def test_listing_names_every_backend_and_its_paths() -> None:
    done = sua("backends", "--json")
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    assert set(rows) == {"embedded", "hf", "openai", "litellm", "fake"}
    assert "top_logprobs" in rows["openai"]["classification"]
    assert "OPENAI_API_KEY" in rows["openai"]["env"]
    # Everything is installed in the test environment.
    assert all(row["installed"] for row in rows.values())


def test_listing_shows_install_hint_when_extra_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    real = backends_cli.importlib.util.find_spec
    monkeypatch.setattr(
        backends_cli.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "litellm" else real(name, *a),
    )
    info = {i.name: i for i in backends_cli.BACKENDS}
    assert backends_cli._installed(info["openai"])
    assert not backends_cli._installed(info["litellm"])


def test_human_listing_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys; from sua_audit.cli import app; "
        "app(['backends'], standalone_mode=False); "
        "heavy = [m for m in ('torch', 'transformers', 'litellm', 'openai') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "litellm/<provider>/<model>" in done.stdout


@pytest.mark.parametrize(("ignore_n", "generation_path"), [(True, "seeded"), (False, "n")])
def test_probe_detects_what_the_server_does(ignore_n: bool, generation_path: str) -> None:
    with StubServer(ignore_n=ignore_n) as server:
        done = sua("backends", "--probe", "openai/stub", "--base-url", server.base_url, "--json")
        assert done.returncode == 0, done.stderr
        found = json.loads(done.stdout)
        assert found["classification_path"] == "top_logprobs"
        assert found["generation_path"] == generation_path
        assert found["model"]["server_honours_n"] is (not ignore_n)
        assert found["model"]["server_returns_logprobs"] is True
        # 1 choice call + either one call with n=2, or that call (its lone answer is not
        # sample 0's seed, so it is dropped once per run) and then 2 seeded calls.
        assert server.count == (2 if not ignore_n else 4)


def test_probe_reports_a_dead_server_as_one_line_error() -> None:
    with StubServer() as server:
        url = server.base_url
    done = sua("backends", "--probe", "openai/stub", "--base-url", url, "--timeout", "2")
    assert done.returncode == 3
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr


def test_perturbations_lists_every_registered_kind() -> None:
    from sua_audit.perturbation import available_perturbers

    done = sua("perturbations", "--json")
    assert done.returncode == 0, done.stderr
    rows = {row["kind"]: row for row in json.loads(done.stdout)}
    assert set(rows) == set(available_perturbers())
    assert {k for k, r in rows.items() if r["model"]} == {"paraphrase", "ambiguity", "adversarial"}
    assert {k for k, r in rows.items() if r["default"]} == {"typo", "word", "distractor"}
    assert all(r["description"] and "``" not in r["description"] for r in rows.values())
