"""The runner's batch contract and the variant contract, over every variant kind usable without an engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import FakeVariant, Generation, Request, RunOptions, Variant, load_suite, run_suite
from harness.run.runner import generate_all
from harness.variants import BuildContext, build_variant


def test_one_generate_call_per_batch_in_order(tiny_suite: Path, tmp_path: Path) -> None:
    fake = FakeVariant("fake", fn=lambda r: r.id.upper())
    out = run_suite(
        load_suite(tiny_suite), RunOptions(variants=("fake",), out=tmp_path / "r", progress=False), {"fake": fake}
    )
    # batch_size = 4 in the fixture: 6 items -> calls of 4 and 2, in data order
    assert [[r.id for r in call] for call in fake.calls] == [["fr", "de", "it", "es"], ["pt", "at"]]
    samples = [json.loads(line) for line in (out / "samples" / "fake.jsonl").read_text().splitlines()]
    assert {s["id"]: s["output"] for s in samples} == {i: i.upper() for i in ["fr", "de", "it", "es", "pt", "at"]}


def test_limit_takes_first_items(tiny_suite: Path, tmp_path: Path) -> None:
    fake = FakeVariant("fake")
    out = run_suite(
        load_suite(tiny_suite),
        RunOptions(variants=("fake",), limit=3, out=tmp_path / "r", progress=False),
        {"fake": fake},
    )
    assert [r.id for call in fake.calls for r in call] == ["fr", "de", "it"]
    run = json.loads((out / "run.json").read_text())
    assert run["data"]["eval_items"] == 3 and run["metrics"]["fake"]["exact_match"]["n"] == 3


def test_wrong_batch_length_is_a_bug_not_a_user_error() -> None:
    class Broken:
        name = "broken"

        def generate(self, requests):
            return [Generation("x")]

    requests = [Request(str(i), ()) for i in range(3)]
    with pytest.raises(RuntimeError, match="returned 1 generations for 3 requests"):
        generate_all(Broken(), "broken", requests, batch_size=8, progress=False)


def test_timing_and_tokens_recorded_when_provided(tiny_suite: Path, tmp_path: Path) -> None:
    fake = FakeVariant(
        "fake",
        fn=lambda r: Generation(
            "{}", prompt_tokens=11, completion_tokens=2, ttft_s=0.01, latency_s=0.25, metadata={"doc": ["a"]}
        ),
    )
    out = run_suite(
        load_suite(tiny_suite), RunOptions(variants=("fake",), out=tmp_path / "r", progress=False), {"fake": fake}
    )
    sample = json.loads((out / "samples" / "fake.jsonl").read_text().splitlines()[0])
    assert (sample["prompt_tokens"], sample["completion_tokens"], sample["ttft_s"], sample["latency_s"]) == (
        11,
        2,
        0.01,
        0.25,
    )
    assert sample["metadata"] == {"doc": ["a"]}
    usage = json.loads((out / "run.json").read_text())["variants"]["fake"]["usage"]
    assert usage["latency_s_p50"] == 0.25 and usage["prompt_tokens_mean"] == 11


@pytest.mark.parametrize("kind", ["fake", "echo"])
def test_variant_contract(kind: str, tiny_suite: Path) -> None:
    """Every variant kind: built from config, a Variant, same length and order out as in."""
    suite = load_suite(tiny_suite)
    context = BuildContext(suite, {"v": {"kind": kind}})
    variant = build_variant("v", context)
    assert isinstance(variant, Variant) and variant.name == "v"
    requests = [Request(f"id{i}", ()) for i in range(0)]  # empty batch
    assert variant.generate(requests) == []
    from harness.suite.prompts import build_request

    requests = [build_request(item, suite.prompt, suite.params) for item in suite.eval_items]
    generations = variant.generate(requests)
    assert len(generations) == len(requests)
    assert all(isinstance(g, Generation) and isinstance(g.text, str) for g in generations)
    assert variant.generate(list(reversed(requests))) == list(reversed(generations))


def test_echo_answers_with_the_user_message(tiny_suite: Path) -> None:
    suite = load_suite(tiny_suite)
    echo = build_variant("e", BuildContext(suite, {"e": {"kind": "echo"}}))
    from harness.suite.prompts import build_request

    request = build_request(suite.eval_items[0], suite.prompt, suite.params)
    assert echo.generate([request])[0].text == "What is the capital of France?"


def test_run_config_replaces_suite_variants(tiny_suite: Path, tmp_path: Path, capsys) -> None:
    from harness.cli import main

    config = tmp_path / "run.toml"
    config.write_text('[variants.paris]\nkind = "fake"\ndefault = \'{"capital": "Paris"}\'\n')
    assert main(["run", str(tiny_suite), "--config", str(config), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    assert "| paris |" in capsys.readouterr().out
    run = json.loads((tmp_path / "r" / "run.json").read_text())
    assert list(run["variants"]) == ["paris"]
    assert run["metrics"]["paris"]["exact_match"]["value"] == pytest.approx(1 / 6, abs=1e-6)
