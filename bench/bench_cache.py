"""Cold vs cached rerun of the demo: the same `harness run` command twice, with an empty generation cache
and then with the one the first run filled. Goal: the cached rerun >= 50x faster, with zero generations,
no engine start, and the same sample files byte for byte.

The converted embedded model, merged adapters, retrieval indexes and prepared benchmark tasks are shared
with the user's cache (a nightly job has them too); only the generation cache starts empty.

    .venv/bin/python bench/bench_cache.py [--bench-data ../shared/benchmarks] [--limit N] [--no-forgetting]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.core.paths import cache_root  # noqa: E402

# as `make demo` (its DEMO_VARIANTS)
DEMO_VARIANTS = ",".join(
    ("echo", "base", "prompted", "constrained", "similar-shots", "similar-constrained", "shots", "reasoning")
    + ("finetuned", "rag", "hybrid", "hybrid-plain")
)
SHARED = ("models", "merged", "indexes", "bench-tasks")


def run(command: list[str], cache: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        command, cwd=ROOT, env={**os.environ, "HARNESS_CACHE_DIR": str(cache)}, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):  # 1: a forgetting budget exceeded, still a complete run
        sys.exit(f"run failed:\n{done.stderr[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench-data", default=str(ROOT.parent / "shared" / "benchmarks"))
    parser.add_argument("--limit", type=int, help="eval items (default: all 150)")
    parser.add_argument("--no-forgetting", action="store_true", help="leave out the MMLU/HellaSwag forgetting checks")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-cache-") as folder:
        folder = Path(folder)
        cache = folder / "cache"
        cache.mkdir()
        for part in SHARED:
            (cache_root() / part).mkdir(parents=True, exist_ok=True)
            (cache / part).symlink_to(cache_root() / part, target_is_directory=True)
        command = [
            sys.executable,
            "-m",
            "harness",
            "run",
            "suites/support-triage",
            "--variants",
            DEMO_VARIANTS,
            "--latency-probe",
            "3",
            "--quiet",
        ]
        if args.limit:
            command += ["--limit", str(args.limit)]
        if not args.no_forgetting and (Path(args.bench_data) / "mmlu").is_dir():
            command += ["--forgetting", "mmlu,hellaswag", "--bench-data", args.bench_data]
        print("command:", " ".join(command[2:]))
        cold = run([*command, "--out", str(folder / "cold")], cache)
        cached = run([*command, "--out", str(folder / "cached")], cache)

        runs = {name: json.loads((folder / name / "run.json").read_text()) for name in ("cold", "cached")}
        misses = {
            name: sum(v.get("cache", {}).get("misses", 0) for v in run["variants"].values())
            for name, run in runs.items()
        }
        same = all(
            answers(folder / "cold" / "samples" / p.name) == answers(p)
            for p in (folder / "cached" / "samples").glob("*.jsonl")
        )
        print(f"{'run':8} {'seconds':>9} {'engine loads':>13} {'generations':>12}")
        for name, seconds in (("cold", cold), ("cached", cached)):
            print(f"{name:8} {seconds:9.1f} {runs[name]['engine']['loads']:13d} {misses[name]:12d}")
        print(
            f"speed-up: {cold / cached:.1f}x (goal >= 50x); samples identical but for retrieval times measured anew: {same}"
        )


def answers(path: Path) -> list[dict]:
    """A sample file without what a rerun measures again: retrieval runs anew (it is not generation)."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for row in rows:
        row["metadata"].pop("retrieval_s", None)
    return rows


if __name__ == "__main__":
    main()
