from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# What a test session may reuse from the user's harness cache: converted and merged models, prepared
# benchmark tasks, retrieval indexes. Never the generation cache: real-engine tests must generate.
SHARED_CACHE_PARTS = ("models", "merged", "bench-tasks", "indexes")


@pytest.fixture(autouse=True, scope="session")
def _fresh_generation_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    from harness.core.paths import cache_root

    real = cache_root()
    session = tmp_path_factory.mktemp("harness-cache")
    for part in SHARED_CACHE_PARTS:
        (real / part).mkdir(parents=True, exist_ok=True)
        (session / part).symlink_to(real / part, target_is_directory=True)
    patch = pytest.MonkeyPatch()
    patch.setenv("HARNESS_CACHE_DIR", str(session))
    yield
    patch.undo()


@pytest.fixture
def tiny_suite(tmp_path: Path) -> Path:
    """A writable copy of the six-item fixture suite."""
    target = tmp_path / "tiny"
    shutil.copytree(FIXTURES / "tiny", target)
    return target
