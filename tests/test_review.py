"""Human review (harness.review) on constructed result directories: the blinded export, the import's
one-line errors, agreement figures checked against `krippendorff` and scikit-learn computed here, ratings
as metrics in compare, diff and the decision, the judge's agreement with people, and pairwise win rates."""

from __future__ import annotations

import csv
import io
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.compare.decision import decide, parse_decision_settings
from harness.compare.diff import diff_runs
from harness.compare.table import compare_run
from harness.core.errors import DataError, HarnessError
from harness.results.read import load_run
from harness.review.export import ExportOptions, export_review
from harness.review.metrics import review_summary, with_ratings
from harness.review.ratings import import_ratings

VARIANTS = {"plain-7b": "base", "shots-v2": "prompted", "tuned-lora": "finetuned"}  # name -> kind
QUALITY = {"plain-7b": 2, "shots-v2": 3, "tuned-lora": 4}  # the true overall rating each variant earns, on average
LABELS = ["billing"] * 24 + ["technical"] * 12 + ["shipping"] * 4  # 40 items, uneven classes
HOSTILE = '</script><script>window.pwned=1</script><img src=x onerror="window.pwned=2">'


def make_run(folder: Path, judge: dict[tuple[str, str], float | None] | None = None) -> Path:
    """run.json and samples/ as `harness run` writes them: three variants, 40 labelled items; with `judge`,
    every sample carries a `judge` score (as the judge metric writes it)."""
    (folder / "samples").mkdir(parents=True)
    described, metrics = {}, {}
    for name, kind in VARIANTS.items():
        lines = []
        for i, label in enumerate(LABELS):
            item = f"q{i:02d}"
            scores: dict[str, Any] = {"exact_match": float((i + len(name)) % 3 == 0)}
            if judge is not None:
                scores["judge"] = judge.get((item, name))
            system = [{"role": "system", "content": f"You are the {name} prompt."}] if kind == "prompted" else []
            output = HOSTILE if (item == "q03" and kind == "prompted") else f"answer {i} ({label}) #{len(name) % 7}"
            lines.append(
                {
                    "id": item,
                    "label": label,
                    "messages": [*system, {"role": "user", "content": f"Ticket {i}: my {label} problem"}],
                    "output": output,
                    "reference": f"{label} <ref {i}>",
                    "scores": scores,
                }
            )
        (folder / "samples" / f"{name}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
        metrics[name] = {"exact_match": summary([s["scores"]["exact_match"] for s in lines])}
        if judge is not None:
            metrics[name]["judge"] = summary([s["scores"]["judge"] for s in lines if s["scores"]["judge"] is not None])
        described[name] = {"kind": kind, "config": {}, "engine": {}, "usage": {}, "samples": f"samples/{name}.jsonl"}
    run = {
        "schema_version": 1,
        "run_id": folder.name,
        "created_at": "2026-03-10T12:00:00Z",
        "suite": {"name": "tickets", "config": {}},
        "data": {"eval_items": len(LABELS)},
        "variants": described,
        "variant_order": list(VARIANTS),
        "metrics": metrics,
        "timings": {"variants": {}},
        "status": "passed",
    }
    (folder / "run.json").write_text(json.dumps(run))
    return folder


def summary(values: list[float]) -> dict[str, Any]:
    mean = sum(values) / len(values)
    return {"value": mean, "ci_low": mean - 0.1, "ci_high": mean + 0.1, "n": len(values), "higher_is_better": True}


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def true_rating(run: Path, export: str, item: str, code: str) -> int:
    """What a rater who sees through nothing but the output would give: the variant's quality, +-1 by item."""
    key = json.loads((run / "review" / "keys" / f"{export}.json").read_text())
    variant = key["items"][item][code]
    return max(1, min(5, QUALITY[variant] + (int(item[1:]) % 3) - 1))


def fill(run: Path, sheet: Path, noise: float, seed: int, out: Path) -> Path:
    """A rater's filled sheet: the true rating, moved by one point with probability `noise`."""
    rng = random.Random(seed)
    rows = read_csv(sheet)
    for row in rows:
        base = true_rating(run, row["export"], row["item"], row["code"])
        for dim in ("accuracy", "format", "overall"):
            move = rng.choice((-1, 1)) if rng.random() < noise else 0
            row[dim] = str(max(1, min(5, base + move)))
    return write_csv(out, rows)


@pytest.fixture
def exported(tmp_path: Path) -> tuple[Path, Any]:
    run = make_run(tmp_path / "run")
    found = export_review(load_run(run), ExportOptions(n=20, raters=2, seed=7, out=tmp_path / "to-reviewers"))
    return run, found


def test_export_is_blinded_stratified_and_keeps_the_key_apart(exported: tuple[Path, Any], tmp_path: Path) -> None:
    run, found = exported
    assert found.items == 20 and dict(found.strata) == {"billing": 12, "shipping": 2, "technical": 6}
    names = sorted(p.name for p in found.out.iterdir())
    assert names == ["form-r1.html", "form-r2.html", "ratings-r1.csv", "ratings-r2.csv"]
    for path in found.out.iterdir():
        text = path.read_text(encoding="utf-8").lower()
        for variant in VARIANTS:  # nothing the reviewer gets names a variant, or its kind
            assert variant not in text, (path.name, variant)
        for kind in VARIANTS.values():
            assert not re.search(rf"\b{kind}\b", text), (path.name, kind)
        assert "http://" not in text and "https://" not in text
    assert found.key.is_file() and found.out not in found.key.parents
    key = json.loads(found.key.read_text())
    assert len(key["items"]) == 20 and all(
        sorted(codes.values()) == sorted(VARIANTS) for codes in key["items"].values()
    )
    rows = read_csv(found.out / "ratings-r1.csv")
    assert len(rows) == 60 and {r["export"] for r in rows} == {found.export_id}
    assert [r["item"] for r in rows] != [r["item"] for r in read_csv(found.out / "ratings-r2.csv")]  # own order
    form = (found.out / "form-r1.html").read_text()
    assert HOSTILE not in form and "<img src=x" not in form and form.count("<script") == 2
    again = export_review(load_run(run), ExportOptions(n=20, raters=2, seed=7, out=tmp_path / "again"))
    assert (
        again.export_id == found.export_id
        and (again.out / "ratings-r1.csv").read_text() == (found.out / "ratings-r1.csv").read_text()
    )  # seeded


def test_a_spreadsheet_cell_never_starts_a_formula(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    samples = run / "samples" / "plain-7b.jsonl"
    lines = [json.loads(x) for x in samples.read_text().splitlines()]
    for line in lines:
        line["output"] = '=HYPERLINK("x")'
    samples.write_text("".join(json.dumps(x) + "\n" for x in lines))
    found = export_review(load_run(run), ExportOptions(n=5, variants=("plain-7b",), out=tmp_path / "out"))
    assert {r["output"] for r in read_csv(found.out / "ratings-r1.csv")} == {'\'=HYPERLINK("x")'}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.update(overall="7"), "field 'overall': rating '7' is out of range"),
        (lambda r: r.update(accuracy="good"), "field 'accuracy': rating 'good' is out of range"),
        (lambda r: r.update(item="q99"), "field 'item': unknown item 'q99'"),
        (lambda r: r.update(code="ZZZZZZ"), "field 'code': unknown code 'ZZZZZZ'"),
        (lambda r: r.update(export="rv-0000000000"), "field 'export': unknown export 'rv-0000000000'"),
        (lambda r: r.update(rater=""), "field 'rater' is empty"),
    ],
)
def test_import_errors_name_file_line_and_field(exported: tuple[Path, Any], tmp_path: Path, change, message) -> None:
    run, found = exported
    sheet = fill(run, found.out / "ratings-r1.csv", 0.0, 1, tmp_path / "r1.csv")
    rows = read_csv(sheet)
    change(rows[4])
    write_csv(sheet, rows)
    with pytest.raises(DataError) as caught:
        import_ratings(run, [sheet])
    assert message in caught.value.what and caught.value.where == f"{sheet}:6"  # header + 4 rows before it
    assert not (run / "review" / "ratings.jsonl").exists()  # nothing half-stored


def test_a_rater_twice_for_one_output_and_a_code_of_another_item(exported: tuple[Path, Any], tmp_path: Path) -> None:
    run, found = exported
    sheet = fill(run, found.out / "ratings-r1.csv", 0.0, 1, tmp_path / "r1.csv")
    again = write_csv(tmp_path / "again.csv", read_csv(sheet)[:3])
    with pytest.raises(DataError, match=r"rater 'r1' rated output \w+ of item '\w+' twice \(also at .*r1.csv:2\)"):
        import_ratings(run, [sheet, again])
    rows = read_csv(sheet)
    other = next(r for r in rows if r["item"] != rows[0]["item"])
    rows[0]["code"] = other["code"]
    write_csv(sheet, rows)
    with pytest.raises(DataError, match=f"field 'code': code '{other['code']}' belongs to item"):
        import_ratings(run, [sheet])


def test_two_raters_agreement_matches_the_libraries(exported: tuple[Path, Any], tmp_path: Path) -> None:
    import krippendorff
    import numpy as np
    from sklearn.metrics import cohen_kappa_score

    run, found = exported
    first = fill(run, found.out / "ratings-r1.csv", 0.2, 1, tmp_path / "r1.csv")
    second = fill(run, found.out / "ratings-r2.csv", 0.4, 2, tmp_path / "r2.csv")
    done = import_ratings(run, [first, second])
    assert (done.ratings, done.skipped, done.replaced) == (120, 0, 0)
    got = review_summary(load_run(run), 0.667)
    assert got is not None and got["raters"] == ["r1", "r2"] and got["outputs_rated"] == 60
    key = json.loads(found.key.read_text())["items"]
    for dimension in ("accuracy", "format", "overall"):
        table = (
            {(row["item"], key[row["item"]][row["code"]]): int(row[dimension]) for row in read_csv(first)},
            {(row["item"], key[row["item"]][row["code"]]): int(row[dimension]) for row in read_csv(second)},
        )
        units = sorted(table[0])
        data = np.array([[t[u] for u in units] for t in table], dtype=float)
        alpha = krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal", value_domain=[1, 2, 3, 4, 5])
        kappa = cohen_kappa_score(data[0], data[1], weights="quadratic", labels=[1, 2, 3, 4, 5])
        found_dim = next(a for a in got["agreement"] if a["dimension"] == dimension)
        assert found_dim["alpha"] == pytest.approx(alpha) and found_dim["kappa"] == pytest.approx(kappa)
        assert found_dim["units"] == 60 and found_dim["alpha_reading"] and "Landis" in found_dim["kappa_reading"]
    print("agreement:", [(a["dimension"], round(a["alpha"], 3), round(a["kappa"], 3)) for a in got["agreement"]])
    # a corrected sheet of r2 replaces r2's ratings of that export
    assert import_ratings(run, [second]).replaced == 60


def test_ratings_are_metrics_in_compare_diff_and_decide(exported: tuple[Path, Any], tmp_path: Path) -> None:
    run, found = exported
    import_ratings(run, [fill(run, found.out / "ratings-r1.csv", 0.2, 1, tmp_path / "r1.csv")])
    result = with_ratings(load_run(run))
    assert result.run_json.metric("tuned-lora", "human_overall")["n"] == 20
    comparison = compare_run(load_run(run), "plain-7b")
    cell = next(r for r in comparison["rows"] if r["variant"] == "tuned-lora")["metrics"]["human_overall"]
    assert cell["ci_low"] < cell["value"] < cell["ci_high"]
    assert result.run_json.metric("tuned-lora", "human_overall")["interval"] == "bootstrap"
    assert cell["delta"] > 1 and cell["test"] == "paired t" and cell["interval"] == "t" and cell["delta_ci_low"] > 0
    assert comparison["review"]["agreement"][0]["kappa"] is None  # one rater: nothing to agree with
    diff = diff_runs(load_run(run), load_run(run))
    assert any(r["metric"] == "human_overall" for r in diff["metrics"])
    decision = decide(load_run(run), parse_decision_settings({"target": ["human_overall >= 3.5"]}))
    assert [t.text for t in decision.targets] == ["human_overall >= 3.5"]
    assert [a.status for a in decision.variants] == ["fails", "fails", "meets"]  # judged by the intervals


def judged(run: Path, agree: bool) -> dict[tuple[str, str], float | None]:
    """A judge's scores of every output: the truth (agree) or noise; one verdict unreadable (None)."""
    rng = random.Random(3)
    scores: dict[tuple[str, str], float | None] = {}
    for i in range(len(LABELS)):
        for variant in VARIANTS:
            truth = max(1, min(5, QUALITY[variant] + (i % 3) - 1))
            scores[(f"q{i:02d}", variant)] = float(truth) if agree else float(rng.randint(1, 5))
    scores[("q00", "plain-7b")] = None
    return scores


@pytest.mark.parametrize("agree", [True, False])
def test_the_decision_uses_the_judge_only_when_people_back_it(tmp_path: Path, agree: bool) -> None:
    scores = judged(tmp_path, agree)
    run = make_run(tmp_path / "run", judge=scores)
    settings = parse_decision_settings({"target": ["judge >= 3.5"]})
    unrated = decide(load_run(run), settings)  # no human ratings: unknown agreement, the judge is ignored
    assert unrated.targets == () and unrated.rule == "no-target"
    assert any("judge 'judge' ignored" in e and "alpha unknown" in e for e in unrated.evidence)
    found = export_review(load_run(run), ExportOptions(n=20, raters=2, seed=7, out=tmp_path / "out"))
    import_ratings(run, [fill(run, found.out / f"ratings-r{k}.csv", 0.2, k, tmp_path / f"r{k}.csv") for k in (1, 2)])
    got = review_summary(load_run(run), 0.667)["judge"][0]
    assert got["metric"] == "judge" and got["units"] == 60 and (got["trusted"] is agree)
    assert (got["alpha"] >= 0.667) is agree and got["alpha_people"] is not None and got["kappa"] is not None
    decision = decide(load_run(run), settings)
    if agree:
        assert [t.text for t in decision.targets] == ["judge >= 3.5"]
        assert decision.assessment("tuned-lora").status == "meets"
        assert any("judge 'judge' counts" in e for e in decision.evidence)
    else:
        assert decision.targets == () and any("judge 'judge' ignored" in e for e in decision.evidence)
    strict = decide(load_run(run), parse_decision_settings({"target": ["judge >= 3.5"], "judge_min_alpha": 1.0}))
    assert strict.targets == ()  # a stated threshold no judge reaches


def test_judge_min_alpha_is_checked_strictly() -> None:
    with pytest.raises(HarnessError, match="judge_min_alpha"):
        parse_decision_settings({"judge_min_alpha": 1.5})
    with pytest.raises(HarnessError, match="judge_min_alpha"):
        parse_decision_settings({"judge_min_alpha": "high"})


def test_pairwise_win_rate_and_sign_test(tmp_path: Path) -> None:
    from scipy.stats import binomtest

    run = make_run(tmp_path / "run")
    found = export_review(load_run(run), ExportOptions(n=30, pairs=("plain-7b", "tuned-lora"), out=tmp_path / "out"))
    key = json.loads(found.key.read_text())["items"]
    rows = read_csv(found.out / "ratings-r1.csv")
    for i, row in enumerate(rows):  # tuned-lora wins 20, loses 6, 4 ties
        better = "tuned-lora" if i < 20 else "plain-7b"
        row["choice"] = "tie" if i >= 26 else ("left" if key[row["item"]][row["left"]] == better else "right")
    import_ratings(run, [write_csv(tmp_path / "pairs.csv", rows)])
    got = review_summary(load_run(run), 0.667)["pairwise"][0]
    assert (got["first"], got["second"], got["wins"], got["losses"], got["ties"]) == (
        "plain-7b",
        "tuned-lora",
        20,
        6,
        4,
    )
    assert got["win_rate"] == pytest.approx(20 / 26) and got["ci_low"] < 20 / 26 < got["ci_high"] < 1
    assert got["p_value"] == pytest.approx(binomtest(20, 26, 0.5).pvalue)
    rows[0]["choice"] = "maybe"
    with pytest.raises(DataError, match="field 'choice': 'maybe' is not left, right or tie"):
        import_ratings(run, [write_csv(tmp_path / "bad.csv", rows)])


def test_the_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = make_run(tmp_path / "run")
    assert main(["review", "export", str(run), "--n", "10", "--variants", "plain-7b,tuned-lora", "--raters", "2"]) == 0
    out = capsys.readouterr().out
    assert "key (keep it from the reviewers)" in out
    folder = next((run / "review").glob("rv-*"))
    sheet = fill(run, folder / "ratings-r1.csv", 0.0, 1, tmp_path / "r1.csv")
    assert main(["review", "import", str(run), str(sheet)]) == 0
    assert "imported 20 ratings" in capsys.readouterr().out
    assert (run / "review" / "agreement.json").is_file()
    rows = read_csv(sheet)
    rows[1]["format"] = "0"
    assert main(["review", "import", str(run), str(write_csv(tmp_path / "bad.csv", rows))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: field 'format': rating '0' is out of range - ")
    assert f"{tmp_path / 'bad.csv'}:3" in err[0]
    assert main(["review", "export", str(run), "--variants", "nope"]) == 2
    assert main(["review", "export", str(run), "--pairs", "plain-7b"]) == 2


def test_grades_that_happen_to_be_all_ones_are_still_compared_as_grades(tmp_path: Path) -> None:
    """The judge's 1-5 grades get the paired t-test in compare, diff and decide even where every grade of
    both variants is 1 (0/1-looking values would otherwise go to McNemar, a test of proportions)."""
    run = make_run(tmp_path / "run", judge={(f"q{i:02d}", v): 1.0 for i in range(len(LABELS)) for v in VARIANTS})
    raw = json.loads((run / "run.json").read_text())
    for found in raw["metrics"].values():
        found["judge"]["interval"] = "bootstrap"  # as the judge metric records it
        found["exact_match"]["interval"] = "wilson"
    (run / "run.json").write_text(json.dumps(raw))
    result = load_run(run)
    assert result.paired_binary("judge") is False and result.paired_binary("exact_match") is None
    cells = next(r for r in compare_run(result, "plain-7b")["rows"] if r["variant"] == "tuned-lora")["metrics"]
    assert cells["judge"]["test"] == "paired t" and cells["exact_match"]["test"].startswith("mcnemar")
    rows = {r["metric"]: r for r in diff_runs(result, result)["metrics"] if r["variant"] == "tuned-lora"}
    assert rows["judge"]["test"] == "paired t" and rows["exact_match"]["test"].startswith("mcnemar")
