"""The HTML report's sample browser: which items it embeds (those worth triaging first, up to a cap), the
filters' tokens, the wrong fields marked in each output, hostile ids and outputs kept inert, and the size and
time of `harness compare` on a 20,000-item run."""

from __future__ import annotations

import copy
import json
import re
import time
from pathlib import Path

import pytest

from harness.cli import main
from harness.compare import html_triage
from harness.compare.html import write_html_report
from harness.compare.html_samples import marked_output, sample_browser
from harness.compare.html_triage import Triage, choose, triage

GOLDEN_RUN = Path(__file__).resolve().parent / "golden" / "tiny-run" / "run.json"
PRIMARY = "accuracy[capital]"
HOSTILE = '</pre></div><script>window.pwned=1</script><img src=x onerror="window.pwned=2">'


def cell(higher: bool | None = True) -> dict:
    return {"value": 0.5, "higher_is_better": higher}


def comparison(variants: list[str], metrics: list[str] | None = None) -> dict:
    metrics = metrics or [PRIMARY, "exact_match", "output_length"]
    higher = {"output_length": None}
    return {
        "run": {"dir": "results/big <run>", "run_id": "r1", "suite": "tiny"},
        "baseline": variants[0],
        "metrics": metrics,
        "primary_metric": metrics[0],
        "rows": [{"variant": v, "metrics": {m: cell(higher.get(m, True)) for m in metrics}} for v in variants],
    }


def sample(item: str, right: float | None, answer: str, output: str | None = None) -> dict:
    return {
        "id": item,
        "answer": answer,
        "output": output if output is not None else json.dumps({"capital": answer, "country": "x"}),
        "reference": '{"capital": "Paris"}',
        "scores": {PRIMARY: right, "exact_match": right, "output_length": 0.0},
    }


def small_run() -> dict[str, list[dict]]:
    """Five items, base and two variants: i1 all right; i2 tuned broke it; i3 tuned fixed it; i4 all wrong
    (same answer); i5 all right but prompted answers differently (case and spacing only: the same)."""
    table = {
        "base": [(1, "Paris"), (1, "Paris"), (0, "Lyon"), (0, "Nice"), (1, "Paris")],
        "prompted": [(1, "Paris"), (1, "Paris"), (0, "Lyon"), (0, "Nice"), (1, " paris ")],
        "tuned": [(1, "Paris"), (0, "Lyon"), (1, "Paris"), (0, "Nice"), (1, "Paris")],
    }
    return {v: [sample(f"i{k + 1}", float(r), a) for k, (r, a) in enumerate(rows)] for v, rows in table.items()}


def by_variant(samples: dict[str, list[dict]]) -> dict[str, dict[str, dict]]:
    return {v: {s["id"]: s for s in rows} for v, rows in samples.items()}


def test_triage_finds_disagreements_flips_and_failures() -> None:
    found = triage(["i1", "i2", "i3", "i4", "i5"], by_variant(small_run()), "base", PRIMARY, True)
    assert [(t.item_id, t.disagree, t.broke, t.fixed, t.failed) for t in found] == [
        ("i1", False, (), (), ()),
        ("i2", True, ("tuned",), (), ("tuned",)),
        ("i3", True, (), ("tuned",), ("base", "prompted")),
        ("i4", False, (), (), ("base", "prompted", "tuned")),
        ("i5", False, (), (), ()),
    ]
    assert [t.tier for t in found] == [3, 0, 0, 2, 3]
    ordered = ["base", "prompted", "tuned"]
    assert found[1].flags(ordered) == ["d", "r2", "f"] and found[2].flags(ordered) == ["d", "u2", "f"]
    # No failure where lower is better or the metric is informational; no flip on a non-0/1 score.
    assert not any(t.failed for t in triage(["i4"], by_variant(small_run()), "base", PRIMARY, None))
    continuous = {"base": [sample("a", 0.5, "x")], "tuned": [sample("a", 1.0, "x")]}
    (only,) = triage(["a"], by_variant(continuous), "base", PRIMARY, True)
    assert only.disagree and not only.broke and not only.fixed


def test_choose_embeds_triage_first_up_to_the_caps_in_item_order() -> None:
    found = [
        Triage(0, "a", False),
        Triage(1, "b", False, failed=("x",)),
        Triage(2, "c", True),
        Triage(3, "d", False, broke=("x",)),
        Triage(4, "e", True),
    ]
    picked = choose(found, lambda t: t.item_id * 10, max_items=3)
    assert [t.item_id for t, _ in picked] == ["c", "d", "e"]  # both disagreements, then the flip
    assert [t.item_id for t, _ in choose(found, lambda t: "x" * 10, max_bytes=25)] == ["c", "e"]
    assert [t.item_id for t, _ in choose(found, lambda t: "x" * 100, max_bytes=25)] == ["c"]  # one always fits
    assert [t.item_id for t, _ in choose(found, lambda t: "")] == ["a", "b", "c", "d", "e"]  # room: all


def test_browser_filters_marks_wrong_fields_and_counts_what_it_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    page = sample_browser(comparison(["base", "prompted", "tuned"]), small_run())
    options = re.findall(r'<option value="(\d+)" data-f="([^"]*)">([^<]*)</option>', page)
    assert options == [("0", "", "i1"), ("1", "d r2 f", "i2"), ("2", "d u2 f", "i3"), ("3", "f", "i4"), ("4", "", "i5")]
    filters = re.findall(r'<option value="([a-z]+\d*)"( disabled)?>([^<]*)</option>', page)
    assert [(v, bool(d)) for v, d, _ in filters] == [
        ("all", False),
        ("d", False),
        ("r1", True),  # prompted never flipped: the filter is there, disabled
        ("u1", True),
        ("r2", False),
        ("u2", False),
        ("f", False),
    ]
    assert (
        "tuned flipped 1 \u2192 0 against base (1)" in page and "accuracy[capital] failed for some variant (3)" in page
    )
    # i2's tuned output: the wrong field listed, its key marked, its score rows red; output_length 0 is not a failure
    assert (
        '<p class="wrong">Wrong fields: capital</p><p class="wrong">Scored 0: exact_match</p>'
        '<table class="scores"><tr class="fail"><td>accuracy[capital]' in page
    )
    assert "<tr><td>output_length</td>" in page and '<tr class="fail"><td>output_length' not in page
    assert '{<mark class="wrong">&quot;capital&quot;</mark>: &quot;Lyon&quot;, &quot;country&quot;' in page
    assert "Embedded 5 of 5 items: 3 of the 3 worth triaging" in page and "left out" not in page

    monkeypatch.setattr(html_triage, "MAX_ITEMS", 2)
    page = sample_browser(comparison(["base", "prompted", "tuned"]), small_run())
    assert re.findall(r'data-f="[^"]*">([^<]*)</option>', page) == ["i2", "i3"]  # the disagreements
    assert "3 left out, 1 of them worth triaging; every sample is in the run folder (results/big &lt;run&gt;)" in page
    assert 'data-item="0">' in page and 'data-item="1" hidden>' in page


def test_hostile_ids_outputs_and_field_names_stay_inert(tmp_path: Path) -> None:
    hostile_id = '"><script>window.pwned=3</script>'
    field = '"><img src=x onerror=alert(1)>'
    metrics = [f"accuracy[{field}]", "exact_match"]
    rows = {
        v: [
            {
                "id": hostile_id,
                "answer": v + HOSTILE,
                "output": HOSTILE + json.dumps({field: 1}),
                "reference": HOSTILE,
                "messages": [{"role": HOSTILE, "content": HOSTILE}],
                "metadata": {HOSTILE: HOSTILE},
                "scores": {metrics[0]: float(k), "exact_match": 0.0, HOSTILE: 0.0},
            }
        ]
        for k, v in enumerate(["base", HOSTILE])
    }
    table = comparison(["base", HOSTILE], metrics)
    table["rows"][0]["metrics"][HOSTILE] = cell()
    page = sample_browser(table, rows)
    assert "<script" not in page and "<img" not in page and "window.pwned=3</script>" not in page
    assert "&lt;script&gt;window.pwned=1" in page and "Wrong fields: &quot;&gt;&lt;img" in page
    # The marked key is the escaped key; nothing it wraps can close the <pre>.
    assert marked_output('{"a": 1} </pre>', ["a"]) == '{<mark class="wrong">&quot;a&quot;</mark>: 1} &lt;/pre&gt;'
    assert marked_output("&quot;a&quot;", ["a"]) == "&amp;quot;a&amp;quot;"  # text that looks escaped: left alone
    report = write_html_report(table, rows, tmp_path).read_text(encoding="utf-8")
    assert report.count("<script") == 1 and "<img src=x" not in report


def test_filters_in_headless_chromium(tmp_path: Path) -> None:
    """The filter narrows the item select to the matching items and shows the first; nothing injected runs."""
    from test_report_html import chrome_or_skip, displayed_items

    rows = small_run()
    rows["tuned"][1]["output"] = HOSTILE  # i2, the first disagreement
    report = write_html_report(comparison(["base", "prompted", "tuned"]), rows, tmp_path)
    driver = chrome_or_skip()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    def enabled_items() -> list[str]:
        return [o.text for o in Select(driver.find_element(By.ID, "item-select")).options if o.is_enabled()]

    try:
        driver.get(report.as_uri())
        assert enabled_items() == ["i1", "i2", "i3", "i4", "i5"] and displayed_items(driver) == ["0"]
        choose_filter = Select(driver.find_element(By.ID, "sample-filter"))
        choose_filter.select_by_value("d")
        assert enabled_items() == ["i2", "i3"] and displayed_items(driver) == ["1"]
        assert driver.find_element(By.ID, "filter-count").text == "2 shown"
        output = driver.find_element(By.CSS_SELECTOR, '.item[data-item="1"] .variant[data-variant="tuned"] pre.output')
        assert output.text == HOSTILE and driver.execute_script("return typeof window.pwned") == "undefined"
        choose_filter.select_by_value("u2")
        assert enabled_items() == ["i3"] and displayed_items(driver) == ["2"]
        choose_filter.select_by_value("f")
        Select(driver.find_element(By.ID, "item-select")).select_by_visible_text("i4")
        assert displayed_items(driver) == ["3"]
        choose_filter.select_by_value("all")
        assert len(enabled_items()) == 5 and displayed_items(driver) == ["3"]  # the item shown stays
    finally:
        driver.quit()


# --- a constructed 20,000-item run through `harness compare` ---


def fake_samples(names: list[str], items: int, metrics: list[str], note: str = "lorem ipsum " * 8) -> dict:
    """Each variant's samples, a short JSON answer each, right or wrong by a fixed pattern."""
    found: dict[str, list[dict]] = {}
    outputs = {c: json.dumps({"capital": c, "note": note}) for c in ["Paris", *(f"City{k}" for k in range(13))]}
    for v, name in enumerate(names):
        found[name] = []
        for i in range(items):
            right = float((i * 7 + v * 3) % 5 != 0)
            capital = "Paris" if right else f"City{i % 13}"
            scores = {m: right for m in metrics}
            scores.update({"output_length": 4.0, "macro_f1[capital]": None, "bleu": 100 * right})
            found[name].append(
                {
                    "id": f"item-{i:05d}",
                    "answer": json.dumps({"capital": capital}),
                    "output": outputs[capital],  # one string per answer: 120,000 samples build fast
                    "reference": '{"capital": "Paris"}',
                    "messages": [
                        {"role": "system", "content": "Answer with JSON."},
                        {"role": "user", "content": f"Capital of country {i}?"},
                    ],
                    "metadata": {},
                    "scores": scores,
                    "latency_s": 0.1,
                    "prompt_tokens": 9,
                    "completion_tokens": 4,
                }
            )
    return found


def big_run(folder: Path, items: int, variants: int) -> Path:
    """A result folder like `harness run` writes for the tiny suite, with `items` items and `variants`
    fake variants (echo first, the baseline)."""
    record = json.loads(GOLDEN_RUN.read_text())
    names = ["echo"] + [f"fake{k}" for k in range(1, variants)]
    template = record["variants"]["canned"]
    record["variants"] = {n: {**copy.deepcopy(template), "samples": f"samples/{n}.jsonl"} for n in names}
    record["variant_order"] = names
    record["metrics"] = {n: copy.deepcopy(record["metrics"]["canned"]) for n in names}
    record["timings"]["variants"] = {n: {"generate_s": 1.0} for n in names}
    record["data"]["eval_items"] = items
    (folder / "samples").mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps(record))
    for name, rows in fake_samples(names, items, list(record["metrics"]["echo"])).items():
        (folder / "samples" / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_report_html_stays_small_at_20000_items(tmp_path: Path, capsys) -> None:
    """The issue's case: 20,000 items x 2 fake variants wrote a 41 MB report.html."""
    run = big_run(tmp_path / "run", 20_000, 2)
    started = time.perf_counter()
    assert main(["compare", str(run), "--baseline", "echo", "--out", str(tmp_path / "out")]) == 0
    elapsed = time.perf_counter() - started
    capsys.readouterr()
    report = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    size = len(report.encode("utf-8"))
    print(f"\n20,000 items x 2 variants: report.html {size / 1e6:.2f} MB, harness compare {elapsed:.1f} s")
    assert size < 5_000_000
    assert report.count('<div class="item"') == html_triage.MAX_ITEMS
    assert f"Embedded {html_triage.MAX_ITEMS:,} of 20,000 items" in report and "samples/*.jsonl" in report


def test_sample_browser_is_bounded_by_bytes_with_six_variants_and_long_outputs() -> None:
    """Six variants whose outputs are 4,000 quotes each (escaped, six times as long): MAX_ITEMS of them would
    be ~40 MB; the byte budget stops well before, and the browser alone (without compare's statistics and
    plots) stays fast at 20,000 items."""
    names = ["base", *(f"v{k}" for k in range(1, 6))]
    samples = fake_samples(names, 20_000, [PRIMARY, "exact_match"], note='"' * 4_000)
    started = time.perf_counter()
    page = sample_browser(comparison(names), samples)
    elapsed = time.perf_counter() - started
    size = len(page.encode("utf-8"))
    print(f"\n20,000 items x 6 variants, long outputs: samples section {size / 1e6:.2f} MB in {elapsed:.1f} s")
    assert size < html_triage.MAX_BYTES + 100_000  # the budget plus the selects, notes and wrappers
    embedded = page.count('<div class="item"')
    assert 0 < embedded < html_triage.MAX_ITEMS and f"{20_000 - embedded:,} left out" in page
