"""Benchmarks by name as lm-eval tasks: lm-eval's own definitions, over local files when they are there.

`mmlu` and `hellaswag` read a local data directory (--bench-data DIR or HARNESS_BENCH_DATA) when it holds
them: MMLU as per-subject CSVs (`dev/`, `test/`; with a `question,choice0..3,answer` header and index
answers, or the original header-less release with letters), HellaSwag as the original release's JSONL.
They are turned into task YAMLs that `include:` lm-eval's own `mmlu` and `hellaswag` definitions, so the
prompt, the answer choices and the metrics are lm-eval's, not a copy. Any other name is lm-eval's own task
(its data from the Hugging Face hub, or the local datasets cache when offline).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.errors import ConfigError, DataError, UnknownNameError, did_you_mean
from harness.core.files import write_file
from harness.core.hashing import file_sha256
from harness.core.paths import cache_root

BENCH_DATA_ENV = "HARNESS_BENCH_DATA"
LOCAL_BENCHMARKS = ("mmlu", "hellaswag")
MMLU_HEADER = ["question", "choice0", "choice1", "choice2", "choice3", "answer"]
HELLASWAG_KEYS = ("activity_label", "ctx_a", "ctx_b", "endings", "label")
TASK_PREFIX = "harness_"  # local task names, apart from lm-eval's own
LAYOUT_VERSION = "2"  # bump when the generated task folders change (2: resolved paths)


@dataclass(frozen=True)
class Benchmark:
    """One benchmark as asked for (e.g. `mmlu`) and the lm-eval leaf tasks it consists of."""

    name: str
    source: str  # "local <dir>" or "lm-eval"
    tasks: Mapping[str, Any]  # leaf task name -> lm-eval Task (MMLU: one per subject)

    def sizes(self) -> dict[str, int]:
        return {name: len(task.eval_docs) for name, task in self.tasks.items()}


def bench_data_dir(option: str | None) -> Path | None:
    """--bench-data, else HARNESS_BENCH_DATA, else none (lm-eval's own data)."""
    value = option or os.environ.get(BENCH_DATA_ENV)
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        where = "--bench-data" if option else BENCH_DATA_ENV
        raise ConfigError(
            f"benchmark data directory not found: {path}", where, "point it at a folder holding mmlu/ and/or hellaswag/"
        )
    return path


def load_benchmarks(names: Sequence[str], data_dir: Path | None) -> list[Benchmark]:
    """Every named benchmark ready to evaluate; local where the data directory has it."""
    from lm_eval.tasks import TaskManager

    local = {
        name: prepare_local(name, data_dir)
        for name in names
        if data_dir and (data_dir / name).is_dir() and name in LOCAL_BENCHMARKS
    }
    remote = [name for name in names if name not in local]
    benchmarks = []
    if local:
        folders = {folder for folder, _ in local.values()}
        manager = TaskManager(include_path=sorted(str(f) for f in folders), include_defaults=False)
        for name, (_folder, leaves) in local.items():
            benchmarks.append(Benchmark(name, f"local {data_dir / name}", _task_dict(leaves, manager, name)))
    if remote:
        manager = TaskManager()
        for name in remote:
            if name not in manager.all_tasks:
                hint = did_you_mean(name, manager.all_tasks)
                raise UnknownNameError(
                    f"unknown benchmark '{name}'", "--forgetting", hint or "any lm-eval task or group name"
                )
            benchmarks.append(Benchmark(name, "lm-eval", _task_dict([name], manager, name)))
    order = {name: i for i, name in enumerate(names)}
    return sorted(benchmarks, key=lambda b: order[b.name])


def select_items(benchmark: Benchmark, limit: int | None, seed: int) -> dict[str, list[int]]:
    """Doc indices per leaf task: all, or `limit` items allocated to leaves in proportion to their size
    (stratified by subject for MMLU) and drawn with a seed, so every variant sees the same items."""
    sizes = benchmark.sizes()
    total = sum(sizes.values())
    if limit is None or limit >= total:
        return {name: list(range(size)) for name, size in sizes.items()}
    exact = {name: limit * size / total for name, size in sizes.items()}
    counts = {name: int(share) for name, share in exact.items()}
    # Largest remainder: the items left after rounding down go to the leaves that lost the most.
    for name in sorted(exact, key=lambda n: (counts[n] - exact[n], n))[: limit - sum(counts.values())]:
        counts[name] += 1
    chosen = {}
    for name, count in counts.items():
        if count:
            rng = random.Random(f"{seed}:{benchmark.name}:{name}")
            chosen[name] = sorted(rng.sample(range(sizes[name]), count))
    return chosen


def prepare_local(name: str, data_dir: Path) -> tuple[Path, list[str]]:
    """Task YAMLs (and, for MMLU, lm-eval-shaped JSONL) for local data, built once per content."""
    source = data_dir / name
    if name == "mmlu":
        files = sorted([*source.glob("test/*.csv"), *source.glob("dev/*.csv")])
        if not any(f.parent.name == "test" for f in files):
            raise DataError(
                f"no test/<subject>_test.csv files in {source}",
                str(source),
                "use the MMLU release layout: dev/ and test/ folders of per-subject CSVs",
            )
    else:
        files = sorted(source.glob("*.jsonl"))
        if len(files) != 1:
            found = ", ".join(f.name for f in files) or "none"
            raise DataError(
                f"expected one HellaSwag .jsonl file in {source}, found {found}",
                str(source),
                "keep only the validation file there",
            )
    # The task YAMLs `include:` lm-eval's own by absolute path: one folder per lm-eval install, or a
    # removed virtual environment (a CI clone's) leaves every other install a folder it cannot load.
    identity = [LAYOUT_VERSION, name, _lm_eval_version(), str(_lm_eval_tasks_dir())]
    key = hashlib.sha256(
        "|".join([*identity, *(f"{f.relative_to(source)}:{file_sha256(f)}" for f in files)]).encode()
    ).hexdigest()[:16]
    # resolved: the task YAMLs hold absolute paths, which must not go through a link that may vanish
    # (a test session's cache folder links to the user's)
    folder = (cache_root() / "bench-tasks").resolve() / f"{name}-{key}"
    manifest = folder / "tasks.json"
    if not manifest.is_file():
        leaves = _write_mmlu(files, folder) if name == "mmlu" else _write_hellaswag(files[0], folder)
        write_file(manifest, json.dumps(leaves))  # last, atomic: its presence means the folder is whole
    return folder, json.loads(manifest.read_text(encoding="utf-8"))


def read_mmlu_csv(path: Path) -> list[dict[str, Any]]:
    """One subject file, in either layout, as lm-eval's MMLU docs (question, choices, answer index)."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header = [cell.strip().lower() for cell in rows[0]] if rows else []
    has_header = header == MMLU_HEADER
    docs = []
    for line, row in enumerate(rows[1:] if has_header else rows, start=2 if has_header else 1):
        if len(row) != 6:
            raise DataError(
                f"expected 6 fields, found {len(row)}",
                f"{path}:{line}",
                "MMLU CSVs hold question, 4 choices and the answer (header question,choice0..3,answer, or none)",
            )
        answer = row[5].strip()
        if has_header and answer in {"0", "1", "2", "3"}:
            index = int(answer)
        elif answer in {"A", "B", "C", "D"}:
            index = "ABCD".index(answer)
        else:
            expected = (
                "an index 0-3 (header layout) or a letter A-D" if has_header else "a letter A-D (original layout)"
            )
            raise DataError(
                f"answer '{answer}' is not {expected}", f"{path}:{line}", "fix the row or the file's header"
            )
        docs.append({"question": row[0], "subject": "", "choices": row[1:5], "answer": index})
    return docs


def _write_mmlu(files: Sequence[Path], folder: Path) -> list[str]:
    import yaml

    defaults = _lm_eval_tasks_dir() / "mmlu" / "default"
    folder.mkdir(parents=True, exist_ok=True)
    subjects: dict[str, dict[str, str]] = {}
    for path in files:
        split = path.parent.name
        subject = path.stem.removesuffix(f"_{split}")
        docs = [{**doc, "subject": subject} for doc in read_mmlu_csv(path)]
        target = folder / f"{subject}_{split}.jsonl"
        write_file(target, "".join(json.dumps(doc, ensure_ascii=False) + "\n" for doc in docs))
        subjects.setdefault(subject, {})[split] = str(target)
    leaves = []
    for subject, data_files in sorted(subjects.items()):
        if "test" not in data_files:
            continue  # dev only: few-shot material without questions to ask
        own = defaults / f"mmlu_{subject}.yaml"
        description = (
            yaml.safe_load(own.read_text(encoding="utf-8"))["description"]
            if own.is_file()
            else f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\n\n"
        )
        task = f"{TASK_PREFIX}mmlu_{subject}"
        config = {
            "include": str(defaults / "_default_template_yaml"),
            "task": task,
            "task_alias": subject,
            "dataset_path": "json",
            "dataset_name": None,
            "dataset_kwargs": {"data_files": data_files},
            "description": description,
        }
        if "dev" not in data_files:
            config["fewshot_split"] = "test"  # lm-eval refuses a missing split even at 0 shots
        write_file(folder / f"{task}.yaml", yaml.safe_dump(config, sort_keys=False))
        leaves.append(task)
    return leaves


def _write_hellaswag(path: Path, folder: Path) -> list[str]:
    import yaml

    with path.open(encoding="utf-8") as handle:
        for line, text in enumerate(handle, start=1):
            try:
                record = json.loads(text)
            except ValueError as exc:
                raise DataError(f"invalid JSON: {exc}", f"{path}:{line}", "use the original HellaSwag JSONL") from None
            missing = [key for key in HELLASWAG_KEYS if key not in record]
            if missing or len(record.get("endings") or []) != 4:
                problem = f"missing {', '.join(missing)}" if missing else "endings must hold 4 items"
                raise DataError(
                    problem,
                    f"{path}:{line}",
                    "use the original HellaSwag JSONL (ctx_a, ctx_b, activity_label, endings, label)",
                )
    folder.mkdir(parents=True, exist_ok=True)
    task = f"{TASK_PREFIX}hellaswag"
    config = {
        "include": str(_lm_eval_tasks_dir() / "hellaswag" / "hellaswag.yaml"),
        "task": task,
        "tag": None,
        "dataset_path": "json",
        "dataset_name": None,
        "dataset_kwargs": {"data_files": {"validation": str(path.resolve())}},
        "training_split": None,
    }
    write_file(folder / f"{task}.yaml", yaml.safe_dump(config, sort_keys=False))
    return [task]


def _task_dict(names: Sequence[str], manager: Any, benchmark: str) -> dict[str, Any]:
    """Leaf tasks by name (groups flattened), loaded by lm-eval."""
    try:
        if hasattr(manager, "load"):  # newer lm-eval: flat dicts of leaf tasks; get_task_dict is deprecated
            return dict(sorted(manager.load(list(names))["tasks"].items()))
        from lm_eval.tasks import get_task_dict

        loaded = get_task_dict(list(names), manager)
    except (OSError, ConnectionError, ValueError) as exc:
        hint = "pass --bench-data with local data, or set HARNESS_ONLINE=1 to let lm-eval download it"
        raise ConfigError(
            f"benchmark '{benchmark}': lm-eval could not load its data ({str(exc).splitlines()[0][:200]})",
            "--forgetting",
            hint,
        ) from None
    leaves: dict[str, Any] = {}

    def walk(node: Mapping[Any, Any]) -> None:
        for key, value in node.items():
            if isinstance(value, Mapping):
                walk(value)
            elif value is not None:
                leaves[getattr(key, "group_name", None) or str(key)] = value

    walk(loaded)
    return dict(sorted(leaves.items()))


def _lm_eval_tasks_dir() -> Path:
    import lm_eval.tasks

    return Path(lm_eval.tasks.__file__).resolve().parent


def _lm_eval_version() -> str:
    from importlib import metadata

    return metadata.version("lm_eval")
