"""Few-shot sweeps (issue 19): `few_shot = [0, 1, 2]` on a prompted table expands into prompted@k0, @k1, @k2
in its place; each bad list is a one-line error; `--variants` selects a sweep or one k; a rag naming the
sweep is told the expansions; a run over a stub engine (no model loads) records the sweep, loads one
engine for all of it, and its report.html plots the primary metric against prompt tokens, one point per k."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.cli import main
from harness.compare.html_plot_base import colours
from harness.compare.html_plots import make_plots, sweep_figure, sweeps
from harness.config.guards import check_name
from harness.config.sweep import expand_sweeps, parse_expansion, sweeps_of
from harness.core.errors import ConfigError, HarnessError, UnknownNameError
from harness.core.types import Generation
from harness.run.plan import RunOptions, plan_run
from harness.variants import BuildContext, build_variant, load_suite

SWEEP = '\n[variants.p]\nkind = "prompted"\nfew_shot = [2, 0, 1]\nseed = 3\n'


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


def one_error(capsys: pytest.CaptureFixture[str], argv: list[str], *needles: str) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


# --- expansion -------------------------------------------------------------------------------------------


def test_expansions_take_the_sweeps_place_in_list_order() -> None:
    tables = {
        "echo": {"kind": "echo"},
        "p": {"kind": "prompted", "few_shot": [0, 5, 1], "seed": 4, "system": "Be brief."},
        "last": {"kind": "base"},
    }
    expanded = expand_sweeps(tables, "suite.toml")
    assert list(expanded) == ["echo", "p@k0", "p@k5", "p@k1", "last"]
    assert expanded["p@k5"] == {"kind": "prompted", "few_shot": 5, "seed": 4, "system": "Be brief.", "sweep": "p"}
    assert tables["p"]["few_shot"] == [0, 5, 1]  # the caller's tables are left as they were
    assert expand_sweeps(expanded, "suite.toml") == expanded  # idempotent: an expansion passes through
    assert sweeps_of(expanded) == {"p": ["p@k0", "p@k5", "p@k1"]}
    assert parse_expansion("p@k12") == ("p", 12) and parse_expansion("p") is None
    check_name("p@k3", "variant", "suite.toml", "[variants.x]")  # '@' may be in a variant name ...
    with pytest.raises(ConfigError, match="invalid suite name"):
        check_name("a@b", "suite", "suite.toml", "key 'name'")  # ... not in a suite's


@pytest.mark.parametrize(
    ("table", "what", "fix"),
    [
        ({"kind": "base", "few_shot": [0, 1]}, "sweeps a prompted variant", 'use kind = "prompted"'),
        ({"kind": "prompted", "few_shot": []}, "few_shot = [] sweeps nothing", "few_shot = [0, 1, 3, 5]"),
        ({"kind": "prompted", "few_shot": [0, 1.5]}, "few_shot[1] = 1.5 is not a whole number", "e.g."),
        ({"kind": "prompted", "few_shot": [0, "3"]}, 'few_shot[1] = "3"', "e.g."),
        ({"kind": "prompted", "few_shot": [-1, 2]}, "few_shot[0] = -1", "e.g."),
        ({"kind": "prompted", "few_shot": [True]}, "few_shot[0] = true", "e.g."),
        ({"kind": "prompted", "few_shot": [1, 3, 1]}, "few_shot lists 1 twice", "[1, 3]"),
    ],
)
def test_bad_lists_are_one_line_errors_at_the_key(table: dict, what: str, fix: str) -> None:
    with pytest.raises(ConfigError) as caught:
        expand_sweeps({"p": table}, "s/suite.toml")
    assert what in caught.value.what and fix in caught.value.fix
    assert caught.value.where == "s/suite.toml [variants.p] few_shot"


def test_an_expansion_name_already_declared_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        expand_sweeps({"p": {"kind": "prompted", "few_shot": [0, 3]}, "p@k3": {"kind": "base"}}, "suite.toml")
    assert "'p@k3' is also declared" in caught.value.what and "[variants.p@k3]" in caught.value.where


def test_a_hand_written_sweep_marker_is_refused() -> None:
    with pytest.raises(ConfigError, match="set by a few_shot list"):
        expand_sweeps({"q": {"kind": "prompted", "few_shot": 1, "sweep": "p"}}, "suite.toml")


# --- a suite with a sweep, loaded and planned without an engine --------------------------------------------


def test_suite_loads_its_sweep_in_declared_order(tiny_suite: Path) -> None:
    append(tiny_suite / "suite.toml", SWEEP + '\n[variants.after]\nkind = "echo"\n')
    suite = load_suite(tiny_suite)
    assert list(suite.config.variants) == ["echo", "canned", "p@k2", "p@k0", "p@k1", "after"]
    assert suite.config.variants["p@k1"]["few_shot"] == 1 and suite.config.variants["p@k1"]["seed"] == 3


def test_a_list_is_checked_when_the_suite_loads(tiny_suite: Path, capsys) -> None:
    append(tiny_suite / "suite.toml", '\n[variants.p]\nkind = "prompted"\nfew_shot = [0, 0]\n')
    one_error(capsys, ["run", str(tiny_suite), "--quiet"], "few_shot lists 0 twice", "suite.toml [variants.p] few_shot")


def test_k_beyond_the_train_split_names_the_expansion(tiny_suite: Path, capsys) -> None:
    append(tiny_suite / "suite.toml", '\n[variants.p]\nkind = "prompted"\nfew_shot = [1, 5]\n')
    one_error(
        capsys,
        ["run", str(tiny_suite), "--quiet"],
        "few_shot = 5 but the train split has 2 items",
        "suite.toml [variants.p@k5]",
    )


def test_rag_inner_naming_the_sweep_is_told_the_expansions(tiny_suite: Path, capsys) -> None:
    append(tiny_suite / "suite.toml", SWEEP + '\n[variants.r]\nkind = "rag"\ninner = "p"\nretriever = "bm25"\n')
    line = one_error(capsys, ["run", str(tiny_suite), "--quiet"], "inner variant 'p' is a few-shot sweep")
    assert line.endswith("point inner at one of p@k2, p@k0, p@k1"), line


def test_rag_inner_may_name_one_expansion(tiny_suite: Path) -> None:
    append(tiny_suite / "suite.toml", SWEEP + '\n[variants.r]\nkind = "rag"\ninner = "p@k1"\nretriever = "bm25"\n')
    assert "r" in load_suite(tiny_suite).config.variants


def plan_names(suite_dir: Path, tmp_path: Path, *variants: str, **options) -> list[str]:
    options = RunOptions(variants=variants, out=tmp_path / "planned", progress=False, **options)
    return plan_run(load_suite(suite_dir), options, {}).names


def test_variants_selects_a_whole_sweep_or_one_k(tiny_suite: Path, tmp_path: Path) -> None:
    append(tiny_suite / "suite.toml", SWEEP)
    assert plan_names(tiny_suite, tmp_path, "p") == ["p@k2", "p@k0", "p@k1"]
    assert plan_names(tiny_suite, tmp_path, "p@k0", "echo") == ["echo", "p@k0"]
    assert plan_names(tiny_suite, tmp_path, "p", "p@k0") == ["p@k2", "p@k0", "p@k1"]
    with pytest.raises(UnknownNameError, match="choose one of: canned, echo, p, p@k0, p@k1, p@k2"):
        plan_names(tiny_suite, tmp_path, "zzz")  # the sweep's name is a choice too


def test_a_run_configs_sweep_expands_too(tiny_suite: Path, tmp_path: Path) -> None:
    tables = {"echo": {"kind": "echo"}, "q": {"kind": "prompted", "few_shot": [1, 2]}}
    config = tmp_path / "run.toml"
    names = plan_names(tiny_suite, tmp_path, "q", variant_tables=tables, config_source=config)
    assert names == ["q@k1", "q@k2"]
    with pytest.raises(ConfigError, match=re.escape("run.toml [variants.q] few_shot")):
        plan_names(tiny_suite, tmp_path, variant_tables={"q": {"kind": "fake", "few_shot": [1]}}, config_source=config)


# --- a run over a stub engine: describe, one engine, the report's plot ------------------------------------


class StubEngine:
    """Answers every request with the right capital once it saw at least two examples, so k changes the score;
    counts prompt tokens as words, as the fake variants do."""

    backend = "stub"
    capitals = {"France": "Paris", "Germany": "Berlin", "Japan": "Tokyo", "Italy": "Rome", "Spain": "Madrid"}

    def generate(self, requests, adapter=None):
        found = []
        for request in requests:
            shots = sum(m.role == "assistant" for m in request.messages)
            asked = request.messages[-1].content
            answer = next((c for country, c in self.capitals.items() if country in asked), "?") if shots > 1 else "?"
            words = sum(len(m.content.split()) for m in request.messages)
            found.append(Generation(text=json.dumps({"capital": answer}), prompt_tokens=words, completion_tokens=3))
        return found

    def close(self) -> None:
        pass


@pytest.fixture
def stub_engine(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """No model: resolve_model names a stub, and the pool starts a StubEngine (counted) instead of a backend."""
    from harness.engines import EnginePool
    from harness.engines.models import ResolvedModel

    starts: list[int] = []

    def start(pool, handle):
        starts.append(1)
        pool.loads += 1
        return StubEngine()

    monkeypatch.setattr("harness.engines.models.resolve_model", lambda name="": ResolvedModel("stub", "/no", "stub"))
    monkeypatch.setattr(EnginePool, "start", start)
    return starts


def test_describe_records_the_sweep(tiny_suite: Path, stub_engine: list[int]) -> None:
    append(tiny_suite / "suite.toml", SWEEP + '\n[variants.one]\nkind = "prompted"\nfew_shot = 1\n')
    suite = load_suite(tiny_suite)
    context = BuildContext(suite, suite.config.variants, str(tiny_suite / "suite.toml"), tiny_suite)
    try:
        described = build_variant("p@k1", context).describe()
        plain = build_variant("one", context).describe()
    finally:
        context.close()
    assert described["sweep"] == {"of": "p", "few_shot": 1} and described["few_shot_examples"] == 1
    assert "sweep" not in plain and plain["few_shot_examples"] == 1
    assert stub_engine == []  # built and described: no engine started


def test_a_sweep_runs_on_one_engine_and_report_plots_it(
    tiny_suite: Path, tmp_path: Path, stub_engine: list[int], capsys
) -> None:
    append(tiny_suite / "suite.toml", SWEEP)
    out = tmp_path / "run"
    code = main(["run", str(tiny_suite), "--out", str(out), "--quiet", "--no-cache", "--variants", "echo,p"])
    assert code == 0, capsys.readouterr().err
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert run["variant_order"] == ["echo", "p@k2", "p@k0", "p@k1"]
    assert run["engine"]["loads"] == 1 and len(stub_engine) == 1  # three variants, one engine
    assert run["variants"]["p@k0"]["config"] == {"few_shot": 0, "seed": 3, "sweep": "p"}
    assert run["variants"]["p@k2"]["engine"]["sweep"] == {"of": "p", "few_shot": 2}
    assert run["metrics"]["p@k2"]["exact_match"]["value"] > run["metrics"]["p@k1"]["exact_match"]["value"]
    assert (out / "samples" / "p@k2.jsonl").is_file()

    assert main(["compare", str(out), "--baseline", "echo", "--primary", "exact_match"]) == 0
    capsys.readouterr()
    report = (out / "report.html").read_text(encoding="utf-8")
    assert 'id="plot-sweep_p"' in report and "Few-shot sweep p: exact_match" in report
    assert "one point per k (p@k0, p@k1, p@k2)" in report
    assert (out / "plots" / "sweep_p.png").read_bytes().startswith(b"\x89PNG")
    rows = re.findall(r'<tr data-variant="([^"]+)">', report)
    assert rows[:4] == ["echo", "p@k2", "p@k0", "p@k1"]  # the scorecard: baseline, then as declared

    comparison = json.loads((out / "comparison.json").read_text(encoding="utf-8"))
    found = sweeps(comparison)
    assert [k for k, _ in found["p"]] == [0, 1, 2]  # joined in k order, whatever the list's order
    fig, texts, skipped = sweep_figure(comparison, "p", found["p"], {}, colours(comparison))
    assert sorted(t.get_text() for t in texts) == ["k0", "k1", "k2"] and skipped == []
    palette = colours(comparison)
    assert {t.get_text(): t.get_color() for t in texts}["k2"] == palette["p@k2"]  # the variant's own colour
    tokens = [row["tokens"]["prompt_mean"] for row in comparison["rows"] if row["variant"].startswith("p@")]
    xs = sorted(line.get_xdata()[0] for line in fig.axes[0].lines if line.get_marker() == "o")
    assert xs == sorted(tokens) and xs[0] < xs[-1]  # more shots, more prompt tokens


def test_no_sweep_plot_without_a_sweep_and_prompt_tokens_from_samples() -> None:
    rows = [
        {"variant": "base", "kind": "base", "metrics": {"m": {"value": 0.2}}, "tokens": {}},
        {"variant": "x@k1", "kind": "fake", "metrics": {"m": {"value": 0.3}}, "tokens": {}},  # not prompted
        {"variant": "p@k0", "kind": "prompted", "metrics": {"m": {"value": 0.4, "ci_low": 0.3}}, "tokens": {}},
        {"variant": "p@k4", "kind": "prompted", "metrics": {"m": {"value": 0.6}}, "tokens": {}},
    ]
    comparison = {
        "rows": rows,
        "baseline": "base",
        "variant_order": [r["variant"] for r in rows],
        "primary_metric": "m",
    }
    assert list(sweeps(comparison)) == ["p"]
    samples = {"p@k0": [{"prompt_tokens": 10}, {"prompt_tokens": 20}], "p@k4": []}  # p@k4: no count anywhere
    fig, texts, skipped = sweep_figure(comparison, "p", sweeps(comparison)["p"], samples, colours(comparison))
    assert [t.get_text() for t in texts] == ["k0"] and skipped == ["k4"]
    assert [line.get_xdata()[0] for line in fig.axes[0].lines if line.get_marker() == "o"] == [15.0]
    one = {**comparison, "rows": rows[:3]}
    assert sweeps(one) == {}  # one k draws no trade-off
    assert not [p.name for p in make_plots(one, {}) if p.name.startswith("sweep")]


def test_harness_errors_stay_one_line(tiny_suite: Path) -> None:
    append(tiny_suite / "suite.toml", '\n[variants.p]\nkind = "prompted"\nfew_shot = ["a"]\n')
    with pytest.raises(HarnessError) as caught:
        load_suite(tiny_suite)
    assert "\n" not in str(caught.value)


def test_check_data_reads_a_suite_that_declares_a_sweep(tiny_suite: Path) -> None:
    """`harness check-data SUITE` checks the variant tables as load_suite does, a few_shot list included."""
    append(tiny_suite / "suite.toml", '\n[variants.p]\nkind = "prompted"\nfew_shot = [0, 1]\n')
    assert main(["check-data", str(tiny_suite), "--estimate-tokens"]) in (0, 1)  # findings, not a config error
    append(tiny_suite / "suite.toml", '\n[variants.q]\nkind = "base"\nfew_shot = [0, 1]\n')
    assert main(["check-data", str(tiny_suite), "--estimate-tokens"]) == 2
