"""The HTML comparison report: escaping of hostile model output, plots as PNG files and data URIs, and, in a
real headless Chromium, that nothing injected runs, the tables and plots render and the sample browser
switches items."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from harness.compare.html import write_html_report

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
NOT_INSTALLED = "Chromium not installed: apt-get install chromium chromium-driver (CI installs them)"
HOSTILE = '</pre></div><script>document.title="PWNED";window.pwned=1</script><img src=x onerror="window.pwned=2">'
HOSTILE_ITEM = "q3"
VARIANTS = ["base", "prompted", "finetuned"]
ITEMS = ["q1", "q2", HOSTILE_ITEM, "q4", "q5"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def metric(value: float, delta: float | None, p_holm: float | None = None, significant: bool | None = None) -> dict:
    return {
        "value": value,
        "ci_low": value - 0.1,
        "ci_high": value + 0.1,
        "n": len(ITEMS),
        "higher_is_better": True,
        "delta": delta,
        "delta_ci_low": None if delta is None else delta - 0.15,
        "delta_ci_high": None if delta is None else delta + 0.15,
        "p_value": p_holm,
        "p_holm": p_holm,
        "test": None if delta is None else "mcnemar",
        "significant": significant,
        "mde": 0.2,
    }


def row(variant: str, kind: str, acc: float, delta: float | None, cost: float | None, forgetting: dict) -> dict:
    return {
        "variant": variant,
        "kind": kind,
        "metrics": {
            "json_valid": metric(1.0, None if delta is None else 0.0, None if delta is None else 1.0, False),
            "accuracy[category]": metric(acc, delta, None if delta is None else 0.01, delta is not None),
        },
        "forgetting": forgetting,
        "latency": {"ttft_s_p50": None, "latency_s_p50": 0.4, "latency_s_p95": 0.9, "source": "samples"},
        "tokens": {"prompt_mean": 120.0, "completion_mean": None},
        "cost": {"per_1k_queries": cost, "basis": "GPU-hour price"},
    }


def comparison() -> dict:
    forgetting = {
        "mmlu": {
            "metric": "acc",
            "value": 0.61,
            "delta": -0.02,
            "delta_ci_low": -0.05,
            "delta_ci_high": 0.01,
            "right_to_wrong": 9,
            "wrong_to_right": 4,
            "mcnemar_p": 0.27,
            "status": "ok",
        }
    }
    return {
        "run": {
            "dir": "results/x",
            "run_id": "run-123",
            "suite": "support-triage",
            "created_at": "2024-01-01T00:00:00Z",
            "items": len(ITEMS),
        },
        "baseline": "base",
        "alpha": 0.05,
        "metrics": ["json_valid", "accuracy[category]"],
        "rows": [
            row("base", "base", 0.6, None, 0.5, {}),
            row("prompted", "prompted", 0.7, 0.1, None, {}),
            row("finetuned", "finetuned", 0.8, 0.2, 0.3, forgetting),
        ],
        "primary_metric": "accuracy[category]",
        "cost": {
            "assumptions": ["GPU at $2/hour", "<b>not bold</b>"],
            "break_even": [{"finetuned": "finetuned", "against": "prompted", "queries": 12000.0, "note": "n/a"}],
        },
    }


def samples() -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for v, variant in enumerate(VARIANTS):
        out[variant] = [
            {
                "id": item,
                "reference": f"ref <{item}>",
                "latency_s": 0.2 + 0.1 * v + 0.05 * i,
                "output": HOSTILE
                if (variant == "prompted" and item == HOSTILE_ITEM)
                else f"{variant} answer to {item}",
                "scores": {"json_valid": 1.0, "accuracy[category]": float((i + v) % 2) if i else None},
                "messages": [{"role": "user", "content": f"Question {item}?"}],
                "metadata": {"category": "billing"},
            }
            for i, item in enumerate(ITEMS)
        ]
    return out


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_html_report(comparison(), samples(), tmp_path_factory.mktemp("report"))


def test_report_escapes_output_and_writes_plots(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    assert report.name == "report.html"
    assert HOSTILE not in text
    assert "<script>document.title" not in text and "<img src=x" not in text
    assert "&lt;/pre&gt;&lt;/div&gt;&lt;script&gt;" in text  # it is there, as text
    assert text.count("<script>") == 1  # only the report's own toggle
    assert "<b>not bold</b>" not in text and "ref &lt;q1&gt;" in text
    assert "http://" not in text and "https://" not in text  # nothing fetched from the network
    pngs = sorted(p.name for p in (report.parent / "plots").glob("*.png"))
    assert pngs == ["deltas.png", "forgetting_flips.png", "latency.png", "quality_vs_cost.png"]
    for name in pngs:
        data = (report.parent / "plots" / name).read_bytes()
        assert data.startswith(PNG_MAGIC)
        width, height = struct.unpack(">II", data[16:24])  # IHDR
        assert width > 0 and height > 0
    assert text.count('<img src="data:image/png;base64,') == len(pngs)
    assert text.count("<figcaption>") == len(pngs)
    assert 'id="forgetting"' in text
    assert "Left out for lack of a cost" in text and "prompted" in text  # the no-cost variant is named


def chrome_or_skip():  # -> selenium WebDriver
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("selenium (pip)")
    if missing:
        # CI installs Chromium itself (.ci/run) and sets CI, so a skip there would hide a broken check.
        if os.environ.get("CI"):
            pytest.fail(f"{NOT_INSTALLED}; missing: {', '.join(missing)}")
        pytest.skip(f"{NOT_INSTALLED}; missing: {', '.join(missing)}")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


def displayed_items(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    return [
        b.get_attribute("data-item")
        for b in driver.find_elements(By.CSS_SELECTOR, "#samples .item")
        if b.is_displayed()
    ]


def test_report_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    driver = chrome_or_skip()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    try:
        driver.get(report.as_uri())
        WebDriverWait(driver, 10).until(
            lambda d: d.execute_script("return Array.from(document.images).every(i => i.complete)")
        )
        assert driver.execute_script("return typeof window.pwned") == "undefined"
        assert driver.title != "PWNED" and "support-triage" in driver.title

        body_rows = driver.find_elements(By.CSS_SELECTOR, "table#scorecard > tbody > tr")
        assert [r.find_element(By.TAG_NAME, "th").text for r in body_rows] == VARIANTS
        assert driver.find_elements(By.CSS_SELECTOR, "table#forgetting > tbody > tr")

        images = driver.find_elements(By.TAG_NAME, "img")
        assert len(images) == 4
        for img in images:
            assert driver.execute_script("return arguments[0].naturalWidth", img) > 0
            assert img.get_attribute("alt")
            assert img.find_element(By.XPATH, "..").tag_name == "figure"

        assert displayed_items(driver) == ["0"]
        select = Select(driver.find_element(By.ID, "item-select"))
        assert [o.text for o in select.options] == ITEMS
        select.select_by_visible_text(HOSTILE_ITEM)
        shown = displayed_items(driver)
        assert shown == [str(ITEMS.index(HOSTILE_ITEM))]  # switched: exactly one block, a different one
        block = driver.find_element(By.CSS_SELECTOR, f'#samples .item[data-item="{shown[0]}"]')
        output = block.find_element(By.CSS_SELECTOR, '.variant[data-variant="prompted"] pre.output')
        assert output.is_displayed() and output.text == HOSTILE
        assert driver.execute_script("return typeof window.pwned") == "undefined"
        assert driver.title != "PWNED"

        select.select_by_visible_text("q5")
        assert displayed_items(driver) == ["4"]

        screenshot = tmp_path / "report.png"
        assert driver.save_screenshot(str(screenshot))
        assert screenshot.stat().st_size > 0
    finally:
        driver.quit()


DECISION = {
    "decision": {
        "recommendation": "Ship rag: it meets accuracy[category] >= 0.8 at the lowest cost per 1k queries.",
        "rule": "prompting-meets-target",
        "ship": "rag",
        "targets": [{"text": "accuracy[category] >= 0.8"}],
        "evidence": [
            "rag: accuracy[category] 0.830 [0.780, 0.880], +0.320 against base (p <0.001).",
            "prompted: accuracy[category] 0.810 [0.760, 0.860], misses the target's lower bound.",
            "finetuned and hybrid meet the target but cost more per 1k queries than rag.",
            "Forgetting: finetuned within budget on mmlu (-0.010 [-0.030, +0.010]).",
            # as many lines as the demo's real decision has: they must not push the scorecard down
            *(
                f"finetuned: forgetting benchmark-{i} (finetuned) -0.010 [-0.030, 0.010] vs base: pass"
                for i in range(26)
            ),
        ],
        "conditions": [{"title": "Enough labelled data", "status": "met", "evidence": "1,200 items"}],
    },
    "error": None,
}


def test_scorecard_fits_1280_and_opens_above_the_fold(tmp_path: Path) -> None:
    """The first screen of a 1280x900 window holds the decision and the whole scorecard, at 6 variants x
    10 metrics, with no sideways scrolling; the screenshot is kept in tmp_path for a look."""
    from test_report_plots import wide_comparison, wide_samples

    report = write_html_report(wide_comparison(probe={"rag"}), wide_samples(), tmp_path, DECISION)
    driver = chrome_or_skip()
    try:
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False},
        )
        driver.get(report.as_uri())
        assert driver.execute_script("return [window.innerWidth, window.innerHeight]") == [1280, 900]
        assert driver.execute_script("return document.scrollingElement.scrollWidth") <= 1280
        box = driver.execute_script(
            "var r = document.getElementById('scorecard').getBoundingClientRect();"
            "var d = document.getElementById('decision').getBoundingClientRect();"
            "return {right: r.right, top: r.top, bottom: r.bottom, dtop: d.top};"
        )
        assert box["right"] <= 1280
        assert box["dtop"] < box["top"] < 900
        assert box["bottom"] <= 900  # the whole scorecard, not only its first row
        rows = driver.execute_script(
            "return Array.from(document.querySelectorAll('#scorecard tbody th')).map(e => e.textContent)"
        )
        assert rows == ["base", "prompted", "rag", "finetuned", "hybrid", "echo"]  # the baseline, then as declared
        folded = driver.execute_script(
            "return Array.from(document.querySelectorAll('details.metric')).filter(d => !d.open).length"
        )
        assert folded == 10
        screenshot = tmp_path / "first_screen.png"
        assert driver.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 0
    finally:
        driver.quit()
