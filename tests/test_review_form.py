"""The reviewer's HTML form in headless Chromium (as tests/test_report_html.py drives the report): two raters
rate every output with the keyboard, progress survives a reload, "Save ratings CSV" downloads the file,
`harness review import` takes it, the ratings appear in `harness compare` with intervals, and the agreement
figures match `krippendorff` and scikit-learn computed here. A hostile output runs nothing."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest
from test_report_html import chrome_or_skip
from test_review import make_run, read_csv, true_rating

from harness.cli import main
from harness.results.read import load_run
from harness.review.export import ExportOptions, export_review


def rate_in_browser(driver, run: Path, form: Path, downloads: Path, noise: float, seed: int) -> Path:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    rng = random.Random(seed)
    driver.get(form.as_uri())
    assert driver.execute_script("return typeof window.pwned") == "undefined" and "PWNED" not in driver.title
    export = json.loads(driver.find_element(By.ID, "review-data").get_attribute("textContent"))["export"]
    total = len(json.loads(driver.find_element(By.ID, "review-data").get_attribute("textContent"))["items"])
    for number in range(total):
        if number == total // 2:  # progress is kept in local storage: a reload loses nothing
            before = driver.find_element(By.ID, "progress").text
            driver.refresh()
            assert driver.find_element(By.ID, "progress").text == before
        item = driver.find_element(By.ID, "item").get_attribute("data-item")
        keys = ""
        for box in driver.find_elements(By.CSS_SELECTOR, "#item .output"):
            truth = true_rating(run, export, item, box.get_attribute("data-code"))
            for _ in range(3):
                move = rng.choice((-1, 1)) if rng.random() < noise else 0
                keys += str(max(1, min(5, truth + move)))
        ActionChains(driver).send_keys(keys + "n").perform()
    assert driver.find_element(By.ID, "progress").text == f"{total * 3} of {total * 3} rated"
    comment = driver.find_element(By.CSS_SELECTOR, "#item textarea.comment")
    comment.send_keys('=1+1, "quoted"')
    driver.find_element(By.ID, "save").click()
    for _ in range(100):
        saved = [p for p in downloads.glob("*.csv")]
        if saved and not list(downloads.glob("*.crdownload")):
            return saved[0]
        time.sleep(0.1)
    pytest.fail("the form saved no CSV")


def test_rate_save_import_compare_and_agree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import krippendorff
    import numpy as np
    from sklearn.metrics import cohen_kappa_score

    run = make_run(tmp_path / "run")
    found = export_review(load_run(run), ExportOptions(n=40, raters=2, seed=1, out=tmp_path / "reviewers"))
    driver = chrome_or_skip()
    saved = []
    try:
        for rater, noise in (("r1", 0.1), ("r2", 0.3)):
            downloads = tmp_path / f"downloads-{rater}"
            downloads.mkdir()
            driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
            saved.append(rate_in_browser(driver, run, found.out / f"form-{rater}.html", downloads, noise, len(saved)))
        assert driver.execute_script("return typeof window.pwned") == "undefined"
    finally:
        driver.quit()
    rows = read_csv(saved[0])
    assert len(rows) == 120 and {r["rater"] for r in rows} == {"r1"}
    assert any(r["comment"] == '\'=1+1, "quoted"' for r in rows)  # kept as text, never a formula

    assert main(["review", "import", str(run), str(saved[0])]) == 0
    assert main(["compare", str(run), "--baseline", "plain-7b", "--full"]) == 0
    printed = capsys.readouterr().out
    assert "human_overall" in printed and "Human review" in printed
    comparison = json.loads((run / "comparison.json").read_text())
    cell = next(r for r in comparison["rows"] if r["variant"] == "tuned-lora")["metrics"]["human_overall"]
    assert cell["ci_low"] < cell["value"] < cell["ci_high"] and cell["delta_ci_low"] > 0

    assert main(["review", "import", str(run), str(saved[1])]) == 0
    agreement = json.loads((run / "review" / "agreement.json").read_text())["agreement"]
    key = json.loads(found.key.read_text())["items"]
    tables = [{(r["item"], key[r["item"]][r["code"]]): r for r in read_csv(path)} for path in saved]
    units = sorted(tables[0])
    for dimension in ("accuracy", "format", "overall"):
        data = np.array([[float(t[u][dimension]) for u in units] for t in tables])
        alpha = krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal", value_domain=[1, 2, 3, 4, 5])
        kappa = cohen_kappa_score(data[0], data[1], weights="quadratic", labels=[1, 2, 3, 4, 5])
        got = next(a for a in agreement if a["dimension"] == dimension)
        assert got["alpha"] == pytest.approx(alpha) and got["kappa"] == pytest.approx(kappa), dimension
        print(f"{dimension}: alpha {alpha:.3f} kappa {kappa:.3f}")


def test_pairwise_form_picks_and_saves(tmp_path: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    run = make_run(tmp_path / "run")
    found = export_review(load_run(run), ExportOptions(n=4, pairs=("plain-7b", "tuned-lora"), out=tmp_path / "out"))
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = chrome_or_skip()
    try:
        driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
        driver.get((found.out / "form-r1.html").as_uri())
        assert len(driver.find_elements(By.CSS_SELECTOR, "#item .output")) == 2
        ActionChains(driver).send_keys("1n2ntn").perform()  # the fourth item by mouse
        driver.find_element(By.CSS_SELECTOR, 'button[data-choice="left"]').click()
        csv_text = driver.execute_script("return window.reviewCsv()")
    finally:
        driver.quit()
    choices = [line.split(",")[5] for line in csv_text.strip().splitlines()[1:]]
    assert sorted(choices) == ["left", "left", "right", "tie"]
