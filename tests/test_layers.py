"""The layer rules in pyproject.toml ([tool.importlinter]) hold, and would catch a forbidden import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(package_parent: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(package_parent)}  # this copy of harness, before the installed one
    command = [str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=package_parent, timeout=300)


def test_the_tree_keeps_every_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "broken" not in result.stdout.lower().replace("0 broken", "")


def test_a_forbidden_import_breaks_the_contracts(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "harness", tmp_path / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    intervals = tmp_path / "harness" / "scoring" / "intervals.py"
    intervals.write_text(intervals.read_text() + "\nfrom harness.engines import EnginePool  # noqa: E402\n")
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout[-3000:]
    assert "harness.scoring is not allowed to import harness.engines" in result.stdout
    assert "harness.scoring.intervals -> harness.engines" in result.stdout


def test_no_import_cycles_not_even_through_type_only_imports() -> None:
    import grimp

    graph = grimp.build_graph("harness", cache_dir=None)  # imports under TYPE_CHECKING count too
    cycles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if graph.chain_exists(imported, module):
                cycles.append(f"{module} -> {imported}")
    assert cycles == []
