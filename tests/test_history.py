"""`harness history`: runs of one suite over time, read from run.json only, with change markers."""

from __future__ import annotations

import copy
import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.compare.history import (
    history_csv,
    history_dict,
    history_markdown,
    load_history,
    select_history,
    write_history,
)
from harness.compare.history_plot import plot_size
from harness.core.errors import HarnessError, HarnessWarning, UnknownNameError

GOLDEN = Path(__file__).resolve().parent / "golden" / "tiny-run"
BASE, BASE2, AD1, AD2 = "b" * 64, "c" * 64, "1" * 64, "2" * 64


def _engine(base: str, adapter: str, model: str = "embedded:smol") -> dict[str, Any]:
    return {
        "backend": "vllm",
        "model": f"{model}+finetuned",
        "model_identity": f"merged:sha256:{base}+sha256:{adapter}",
        "adapter": {"path": f"/somewhere/{adapter[:4]}", "rank": 16, "sha256": adapter},
        "serve": "merged",
    }


def _write_run(folder: Path, created_at: str, value: float, edit: Any = None) -> Path:
    """A copy of the golden run.json (samples left out: history never reads them), edited."""
    run = json.loads((GOLDEN / "run.json").read_text(encoding="utf-8"))
    run["run_id"], run["created_at"] = folder.name, created_at
    # The commit is the fixture's own, not whatever commit the golden run was last regenerated at.
    run["environment"]["git"] = {"commit": "b42ee86579f9a251915eed01233e9af20f6d03eb", "dirty": False}
    run["metrics"]["canned"]["exact_match"].update(value=value, ci_low=value - 0.1, ci_high=value + 0.1)
    run["variants"]["canned"]["engine"] = _engine(BASE, AD1)
    if edit:
        edit(run)
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps(run, indent=2), encoding="utf-8")
    return folder


def _adapter2(run: dict) -> None:
    run["variants"]["canned"]["engine"] = _engine(BASE, AD2)


def _data2(run: dict) -> None:
    _adapter2(run)
    run["data"]["sha256"]["eval.jsonl"] = "e" * 64


def _model2_prompt2(run: dict) -> None:
    _data2(run)
    run["variants"]["canned"]["engine"] = _engine(BASE2, AD2, model="embedded:other")
    run["suite"]["config"]["prompt"]["template"] = "Capital of {country}?"


def _failed_with_new_variant(run: dict) -> None:
    _model2_prompt2(run)
    run["status"] = "failed"
    run["environment"]["git"] = {"commit": "abcdef0123456789", "dirty": True}
    run["variants"]["extra"] = copy.deepcopy(run["variants"]["echo"])
    run["metrics"]["extra"] = copy.deepcopy(run["metrics"]["echo"])
    run["engine"]["start_s"] = 99.0  # how long the engine took to start is not a change of inputs
    run["suite"]["config"]["cost"]["gpu_hour"] = 2.0  # nor is the price of a GPU hour


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """Six runs of `tiny` (one under baselines/), out of name order, plus partial, corrupt and foreign ones."""
    root = tmp_path / "results"
    _write_run(root / "baselines" / "tiny-a", "2026-01-01T08:00:00+00:00", 0.1)
    _write_run(root / "tiny-z", "2026-01-02T09:00:00+00:00", 0.2)  # same inputs: no markers
    _write_run(root / "tiny-c", "2026-01-03T09:00:00+00:00", 0.3, _adapter2)
    _write_run(root / "tiny-b", "2026-01-04T11:00:00+02:00", 0.4, _data2)  # 09:00 UTC
    _write_run(root / "tiny-y", "2026-01-05T09:00:00Z", 0.5, _model2_prompt2)
    _write_run(root / "tiny-x", "2026-01-06T09:00:00+00:00", 0.6, _failed_with_new_variant)
    _write_run(root / "other-run", "2026-01-03T00:00:00+00:00", 0.9, lambda run: run["suite"].update(name="other"))
    (root / "half-written" / "samples").mkdir(parents=True)  # no run.json yet
    _write_run(root / "resumable", "2026-01-07T00:00:00+00:00", 0.7)
    (root / "resumable" / "progress").mkdir()
    (root / "baselines" / "broken").mkdir()
    (root / "baselines" / "broken" / "run.json").write_text("{not json", encoding="utf-8")
    (root / ".tiny-q.staging").mkdir()  # a run being assembled: not counted at all
    return root


def _load(root: Path, suite: str = "tiny") -> Any:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = load_history(root, suite)
    return history, [str(w.message) for w in caught if issubclass(w.category, HarnessWarning)]


def test_runs_are_ordered_by_created_at_with_values_status_and_commit(results: Path) -> None:
    history, _ = _load(results)
    assert [r.run_id for r in history.runs] == ["tiny-a", "tiny-z", "tiny-c", "tiny-b", "tiny-y", "tiny-x"]
    assert [r.variants["canned"].metrics["exact_match"].value for r in history.runs] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    first = history.runs[0].variants["canned"].metrics["exact_match"]
    assert (first.ci_low, first.ci_high, first.n) == (pytest.approx(0.0), pytest.approx(0.2), 6)
    assert [r.status for r in history.runs] == ["passed"] * 5 + ["failed"]
    assert history.runs[0].commit == "b42ee86" and history.runs[-1].commit == "abcdef0*"
    assert history.variants == ("canned", "echo", "extra")
    assert history.metrics[:2] == ("exact_match", "json_valid")  # the suite's declared order
    assert history.plot_metrics == ("exact_match",)


def test_markers_appear_exactly_where_inputs_changed(results: Path) -> None:
    history, _ = _load(results)
    assert [r.variants["canned"].markers for r in history.runs] == ["", "", "A", "D", "MC", ""]
    assert [r.variants["echo"].markers for r in history.runs] == ["", "", "", "D", "C", ""]
    assert history.runs[-1].variants["extra"].markers == ""  # its first run: nothing to compare with
    changes = dict(history.runs[4].variants["canned"].changes)
    assert "model_identity" in changes["M"] and "prompt.template" in changes["C"]
    assert history.runs[2].variants["canned"].changes == (("A", f"adapter: {AD1[:12]} -> {AD2[:12]}"),)


def test_rag_index_is_data_and_backend_is_model(tmp_path: Path) -> None:
    def engine(key: str, backend: str) -> Any:
        return lambda run: run["variants"]["echo"].update(
            engine={"backend": backend, "index": {"key": key, "kind": "bm25", "cached": key == "k1", "seconds": 0.3}}
        )

    _write_run(tmp_path / "r1", "2026-01-01T00:00:00+00:00", 0.1, engine("k1", "vllm"))
    _write_run(tmp_path / "r2", "2026-01-02T00:00:00+00:00", 0.1, engine("k1", "vllm"))
    _write_run(tmp_path / "r3", "2026-01-03T00:00:00+00:00", 0.1, engine("k2", "vllm"))
    _write_run(tmp_path / "r4", "2026-01-04T00:00:00+00:00", 0.1, engine("k2", "hf"))
    history, _ = _load(tmp_path)
    assert [r.variants["echo"].markers for r in history.runs] == ["", "", "D", "M"]


def test_partial_runs_are_counted_and_a_corrupt_run_json_warns(results: Path) -> None:
    history, warned = _load(results)
    assert history.skipped_partial == 2 and history.unreadable == 1
    assert len(warned) == 1 and str(results / "baselines" / "broken" / "run.json") in warned[0]
    assert (
        "Skipped: 2 partial run directories (no run.json, or a progress/ folder), 1 unreadable run.json."
        in history_markdown(history)
    )


def test_markdown_table_shows_values_markers_and_what_changed(results: Path) -> None:
    history, _ = _load(results)
    text = history_markdown(select_history(history, metrics=["exact_match"]))
    assert "| tiny-c | 2026-01-03 09:00 | passed | b42ee86 | 0.300 (A) | 0.000 | - |" in text
    assert "| tiny-x | 2026-01-06 09:00 | failed | abcdef0* | 0.600 | 0.000 | 0.000 |" in text
    assert "## json_valid" not in text
    assert "- `tiny-b` D every variant: data.sha256.eval.jsonl: " in text
    assert "- `tiny-y` M canned: model: embedded:smol+finetuned -> embedded:other+finetuned" in text


def test_select_last_variants_and_unknown_names(results: Path) -> None:
    history, _ = _load(results)
    chosen = select_history(history, metrics=["exact_match", "bleu"], variants=["echo"], last=2)
    assert [r.run_id for r in chosen.runs] == ["tiny-y", "tiny-x"]
    assert [r.variants["echo"].markers for r in chosen.runs] == ["C", ""]  # still against the run before tiny-y
    assert chosen.plot_metrics == ("exact_match", "bleu") and chosen.variants == ("echo",)
    with pytest.raises(UnknownNameError, match="did you mean 'exact_match'"):
        select_history(history, metrics=["exact_mach"])
    with pytest.raises(UnknownNameError, match="did you mean 'canned'"):
        select_history(history, variants=["caned"])
    with pytest.raises(HarnessError, match="--last"):
        select_history(history, last=0)


def test_csv_is_long_format(results: Path) -> None:
    import io

    import pandas as pd

    history, _ = _load(results)
    frame = pd.read_csv(
        io.StringIO(history_csv(select_history(history, metrics=["exact_match"]))), keep_default_na=False
    )
    assert list(frame.columns) == ["run_id", "created_at", "variant", "metric", "value", "ci_low", "ci_high", "markers"]
    assert len(frame) == 6 + 6 + 1  # canned and echo in six runs, extra in one
    row = frame[(frame.run_id == "tiny-y") & (frame.variant == "canned")].iloc[0]
    assert (row.metric, row.value, row.markers, row.created_at) == (
        "exact_match",
        0.5,
        "MC",
        "2026-01-05T09:00:00+00:00",
    )


def test_write_history_png_has_the_expected_size(results: Path, tmp_path: Path) -> None:
    from matplotlib.image import imread

    history, _ = _load(results)
    for metrics, folder in ((None, "one"), (["exact_match", "bleu", "chrf"], "three")):
        paths = write_history(select_history(history, metrics=metrics), tmp_path / folder)
        assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = plot_size(len(metrics or [1]))
        assert imread(paths["png"]).shape[:2] == (height, width)
        assert paths["markdown"].read_text(encoding="utf-8").startswith("# tiny: 6 runs")
        assert paths["csv"].read_text(encoding="utf-8").startswith("run_id,created_at,variant,metric,")


def test_cli_history_markdown_json_and_out(results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    assert (
        main(
            [
                "history",
                str(results),
                "--suite",
                "tiny",
                "--metric",
                "exact_match",
                "--metric",
                "bleu,chrf",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "## exact_match" in text and "## chrf" in text and "## json_valid" not in text
    assert sorted(p.name for p in out.iterdir()) == ["history.csv", "history.md", "history.png"]
    assert main(["history", str(results), "--suite", "tiny", "--json", "--last", "1", "--variants", "canned"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["run_id"] for r in data["runs"]] == ["tiny-x"] and list(data["runs"][0]["variants"]) == ["canned"]
    assert data["runs"][0]["variants"]["canned"]["metrics"]["exact_match"]["value"] == 0.6
    assert data == json.loads(json.dumps(history_dict(select_history(_load(results)[0], variants=["canned"], last=1))))


def test_cli_unknown_suite_and_no_runs_are_one_line_errors(
    results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["history", str(results), "--suite", "tiyn"]) == 2
    err = capsys.readouterr().err
    assert "error: no runs of suite 'tiyn'" in err and "did you mean 'tiny'?" in err and "Traceback" not in err
    assert main(["history", str(results / "baselines" / "tiny-a" / "empty-not-there"), "--suite", "tiny"]) == 2
    (tmp_path / "empty").mkdir()
    assert main(["history", str(tmp_path / "empty"), "--suite", "tiny"]) == 2
    err = capsys.readouterr().err
    assert err.count("error: ") == 2 and "no runs under" in err


def test_a_suite_folder_and_an_older_schema_are_read(results: Path) -> None:
    shutil.rmtree(results / "baselines" / "broken")
    run_json = results / "tiny-z" / "run.json"
    run = json.loads(run_json.read_text(encoding="utf-8"))
    run["schema_version"] = 0
    del run["environment"], run["status"]
    run_json.write_text(json.dumps(run), encoding="utf-8")
    history, warned = _load(results, "suites/tiny/")
    assert warned == [] and history.suite == "tiny"
    assert (history.runs[1].status, history.runs[1].commit) == ("?", "")
