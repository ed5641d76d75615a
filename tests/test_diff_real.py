"""`harness diff` on two real demo runs (the embedded model on vLLM), the second with a changed system
prompt: the diff names the change, lists the flipped items with both outputs, and its exit code follows
the gate. Then `harness compare` on the real run, HTML report included."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "suites" / "support-triage"
ITEMS = "20"


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], cwd=ROOT, capture_output=True, text=True, timeout=1200
    )


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("diff")
    # The PR under review shortens the prompted variant's system prompt to one line.
    config = folder / "shorter-prompt.toml"
    config.write_text(
        '[variants.prompted]\nkind = "prompted"\nfew_shot = 3\nsystem = "You triage support tickets. Reply with JSON only."\n'
    )
    old, new = folder / "main", folder / "pr"
    for out, extra in ((old, ()), (new, ("--config", str(config)))):
        done = harness(
            "run", str(DEMO), "--variants", "prompted", "--limit", ITEMS, "--out", str(out), "--quiet", *extra
        )
        assert done.returncode == 0, done.stderr[-2000:]
    return old, new


def test_diff_shows_the_prompt_change_and_the_flips(two_runs: tuple[Path, Path], tmp_path: Path) -> None:
    old, new = two_runs
    done = harness("diff", str(old), str(new), "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr  # no gate: a report, not a verdict
    report = done.stdout
    assert "prompted config: system" in report and "prompted prompts: messages differ for 20 items" in report
    found = json.loads((tmp_path / "diff.json").read_text())
    flips = found["flips"]["prompted"]
    assert flips, "a different system prompt changed no 0/1 score on 20 items"
    first = flips[0]
    assert f"`{first['id']}`" in report and first["old_output"] != first["new_output"]
    rows = {r["metric"]: r for r in found["metrics"] if r["variant"] == "prompted"}
    assert rows["json_valid"]["items"] == int(ITEMS)
    moved = sum((r["right_to_wrong"] or 0) + (r["wrong_to_right"] or 0) for r in rows.values())
    assert moved >= len(flips)


def test_diff_exit_code_follows_the_gate(two_runs: tuple[Path, Path], tmp_path: Path) -> None:
    old, new = two_runs
    found = json.loads(harness("diff", str(old), str(new), "--json").stdout)
    row = next(r for r in found["metrics"] if r["variant"] == "prompted" and r["metric"] == "json_valid")
    holds, fails = tmp_path / "holds.toml", tmp_path / "fails.toml"
    holds.write_text(f'[[gate]]\nmetric = "json_valid"\nmin = {row["new"] - 0.01}\n')
    fails.write_text(f'[[gate]]\nmetric = "json_valid"\nmin = {row["new"] + 0.01}\n')
    assert harness("diff", str(old), str(new), "--gate", str(holds)).returncode == 0
    failed = harness("diff", str(old), str(new), "--gate", str(fails))
    assert failed.returncode == 1 and "A gate failed" in failed.stdout
    assert harness("diff", str(old), str(new), "--gate", str(tmp_path / "missing.toml")).returncode == 2


def test_compare_on_a_real_run(two_runs: tuple[Path, Path], tmp_path: Path) -> None:
    old, _ = two_runs
    done = harness("compare", str(old), "--baseline", "prompted", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    comparison = json.loads((tmp_path / "comparison.json").read_text())
    (row,) = comparison["rows"]
    assert row["tokens"]["prompt_mean"] > 100 and row["latency"]["latency_s_p50"] > 0
    assert row["cost"]["per_1k_queries"] > 0  # the demo suite's [cost] token prices
    html = (tmp_path / "report.html").read_text()
    assert 'id="comparison"' in html and "data:image/png;base64," in html
