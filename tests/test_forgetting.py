"""Forgetting checks without an engine: paired statistics, the budget, subset selection, local benchmark
files (both MMLU layouts, broken files), lm-eval's prompt formats on local data, and bad options."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from scipy.stats import binomtest

from harness.cli import main
from harness.config.settings import ForgettingSettings
from harness.core.errors import ConfigError, DataError
from harness.forgetting.check import judge, primary_metric
from harness.forgetting.tasks import Benchmark, load_benchmarks, read_mmlu_csv, select_items
from harness.scoring.paired import PairedComparison, compare_paired, mcnemar_exact

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "benchmarks"
MMLU_PROMPT = "{question}\nA. {c[0]}\nB. {c[1]}\nC. {c[2]}\nD. {c[3]}\nAnswer:"  # lm-eval's mmlu doc_to_text


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Task folders built from a test's own files stay out of the user's cache."""
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))


# --- paired statistics and the budget ---


def test_mcnemar_exact_by_hand() -> None:
    # 1 flip one way, 9 the other: p = 2 * (C(10,0) + C(10,1)) / 2^10
    assert mcnemar_exact(1, 9) == pytest.approx(2 * 11 / 1024, abs=1e-12)
    assert mcnemar_exact(9, 1) == pytest.approx(2 * 11 / 1024, abs=1e-12)
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(7, 3) == pytest.approx(binomtest(7, 10, 0.5).pvalue, abs=1e-12)


def test_compare_paired_counts_flips_and_brackets_the_delta() -> None:
    before = [1, 1, 1, 1, 0, 0, 1, 0, 1, 1] * 10
    after = [1, 0, 1, 0, 0, 1, 1, 0, 0, 1] * 10
    result = compare_paired(before, after)
    assert (result.right_to_wrong, result.wrong_to_right) == (30, 10)
    assert result.delta == pytest.approx(-0.2)
    assert result.ci_low < -0.2 < result.ci_high < 0
    assert result.mcnemar_p == pytest.approx(binomtest(30, 40, 0.5).pvalue)
    assert compare_paired(before, after) == result  # seeded


def test_compare_paired_continuous_scores_have_no_flips() -> None:
    result = compare_paired([0.5, 0.2, 0.9], [0.4, 0.3, 0.9])
    assert result.right_to_wrong is None and result.mcnemar_p is None
    assert result.delta == pytest.approx(0.0)
    with pytest.raises(ValueError):
        compare_paired([1, 0], [1])


def comparison(delta: float, low: float, high: float) -> PairedComparison:
    return PairedComparison(200, 0.5, 0.5 + delta, delta, low, high, 0, 0, 1.0)


def test_budget_statuses() -> None:
    assert judge(comparison(-0.01, -0.05, 0.03), "acc", 2.0)["status"] == "pass"
    assert judge(comparison(-0.04, -0.09, 0.01), "acc", 2.0)["status"] == "over"  # over budget, not significant
    assert judge(comparison(-0.10, -0.15, -0.05), "acc_norm", 2.0)["status"] == "fail"
    # significant drop, not beyond 2 points
    assert judge(comparison(-0.04, -0.07, -0.01), "acc", 2.0)["status"] == "over"
    assert judge(comparison(-0.10, -0.15, -0.05), "acc", None)["status"] is None  # no budget set
    assert judge(comparison(-0.10, -0.15, -0.05), "bleu", 2.0)["status"] is None  # not an accuracy
    assert primary_metric({"acc": {}, "acc_norm": {}}) == "acc_norm"
    assert primary_metric({"acc": {}}) == "acc"


# --- paired subsets ---


def fake_benchmark(sizes: dict[str, int]) -> Benchmark:
    return Benchmark("mmlu", "test", {name: SimpleNamespace(eval_docs=[None] * size) for name, size in sizes.items()})


def test_subsets_are_stratified_seeded_and_the_same_every_time() -> None:
    sizes = {"anatomy": 135, "astronomy": 152, "law": 1534, "virology": 166, "tiny": 3}
    bench = fake_benchmark(sizes)
    chosen = select_items(bench, 100, seed=0)
    assert sum(len(v) for v in chosen.values()) == 100
    total = sum(sizes.values())
    for name, indices in chosen.items():
        share = 100 * sizes[name] / total
        assert int(share) <= len(indices) <= int(share) + 1  # proportional to the subject's size
        assert indices == sorted(set(indices)) and all(0 <= i < sizes[name] for i in indices)
    assert select_items(bench, 100, seed=0) == chosen
    assert select_items(bench, 100, seed=1) != chosen
    assert select_items(bench, None, 0) == {name: list(range(size)) for name, size in sizes.items()}
    assert select_items(bench, 10_000, 0)["tiny"] == [0, 1, 2]


def test_real_mmlu_subset_covers_subjects(tmp_path: Path) -> None:
    (mmlu,) = load_benchmarks(["mmlu"], SHARED)
    assert len(mmlu.tasks) == 57 and sum(mmlu.sizes().values()) == 14042
    chosen = select_items(mmlu, 200, 0)
    assert sum(map(len, chosen.values())) == 200
    assert len(chosen) >= 50  # nearly every subject gets at least one question
    assert max(map(len, chosen.values())) == len(chosen["harness_mmlu_professional_law"])  # the largest subject


# --- local data: both MMLU layouts, lm-eval's formats, broken files ---

QUESTIONS = [
    ["What is 2+2?", "3", "4", "5", "22"],
    ['A "quoted", comma question', "a", "b", "c", "d"],
]


def write_csv(path: Path, rows: list[list[str]], header: bool) -> None:
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if header:
            writer.writerow(["question", "choice0", "choice1", "choice2", "choice3", "answer"])
        writer.writerows(rows)


def test_task_folders_are_kept_per_lm_eval_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The task YAMLs include lm-eval's own by absolute path. A folder built by another virtual environment
    (a deleted CI clone's) must not be reused: its includes point at files that are gone."""
    import shutil

    import lm_eval.tasks
    import yaml

    from harness.forgetting import tasks

    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "data" / "mmlu" / "test"
    data.mkdir(parents=True)
    write_csv(data / "anatomy_test.csv", [[*QUESTIONS[0], "B"], [*QUESTIONS[1], "D"]], header=False)
    installed = Path(lm_eval.tasks.__file__).resolve().parent
    other = tmp_path / "other-venv" / "lm_eval" / "tasks"
    shutil.copytree(installed / "mmlu", other / "mmlu")
    monkeypatch.setattr(tasks, "_lm_eval_tasks_dir", lambda: other)
    elsewhere, _ = tasks.prepare_local("mmlu", tmp_path / "data")
    shutil.rmtree(tmp_path / "other-venv")  # that environment is deleted
    monkeypatch.undo()
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    here, leaves = tasks.prepare_local("mmlu", tmp_path / "data")
    assert here != elsewhere
    include = yaml.safe_load((here / f"{leaves[0]}.yaml").read_text())["include"]
    assert Path(include).is_file() and Path(include).is_relative_to(installed)
    assert len(load_benchmarks(["mmlu"], tmp_path / "data")[0].tasks) == 1  # lm-eval loads it


def test_both_mmlu_layouts_read_the_same(tmp_path: Path) -> None:
    write_csv(tmp_path / "indexed.csv", [[*QUESTIONS[0], "1"], [*QUESTIONS[1], "3"]], header=True)
    write_csv(tmp_path / "letters.csv", [[*QUESTIONS[0], "B"], [*QUESTIONS[1], "D"]], header=False)
    indexed, letters = read_mmlu_csv(tmp_path / "indexed.csv"), read_mmlu_csv(tmp_path / "letters.csv")
    assert indexed == letters
    assert [d["answer"] for d in indexed] == [1, 3] and indexed[1]["question"] == QUESTIONS[1][0]


@pytest.mark.parametrize(
    ("rows", "header", "line", "needle"),
    [
        ([[*QUESTIONS[0], "1"], [*QUESTIONS[1], "7"]], True, 3, "answer '7'"),
        ([[*QUESTIONS[0], "B"], QUESTIONS[1]], False, 2, "expected 6 fields, found 5"),
        ([[*QUESTIONS[0], "1"]], False, 1, "letter A-D"),  # index answers need the header
    ],
)
def test_bad_mmlu_rows_name_file_and_line(tmp_path: Path, rows: list, header: bool, line: int, needle: str) -> None:
    path = tmp_path / "bad.csv"
    write_csv(path, rows, header)
    with pytest.raises(DataError) as caught:
        read_mmlu_csv(path)
    assert f"{path}:{line}" in str(caught.value) and needle in str(caught.value)


def test_local_original_mmlu_release_gets_lm_evals_prompt_and_metric(tmp_path: Path, own_cache: None) -> None:
    data = tmp_path / "bench"
    write_csv(data / "mmlu" / "test" / "astronomy_test.csv", [[*QUESTIONS[0], "B"], [*QUESTIONS[1], "D"]], header=False)
    write_csv(data / "mmlu" / "dev" / "astronomy_dev.csv", [[*QUESTIONS[0], "B"]], header=False)
    (mmlu,) = load_benchmarks(["mmlu"], data)
    assert mmlu.source == f"local {data / 'mmlu'}"
    task = mmlu.tasks["harness_mmlu_astronomy"]
    docs = list(task.eval_docs)
    assert task.doc_to_text(docs[1]) == MMLU_PROMPT.format(question=QUESTIONS[1][0], c=QUESTIONS[1][1:])
    assert task.doc_to_choice(docs[0]) == ["A", "B", "C", "D"] and task.doc_to_target(docs[1]) == 3
    assert task.config.description == "The following are multiple choice questions (with answers) about astronomy.\n\n"
    assert [m["metric"] for m in task.config.metric_list] == ["acc"]


def test_local_hellaswag_is_lm_evals_hellaswag() -> None:
    from lm_eval.tasks.hellaswag.utils import preprocess

    (hellaswag,) = load_benchmarks(["hellaswag"], SHARED)
    task = hellaswag.tasks["harness_hellaswag"]
    docs = list(task.eval_docs)
    assert len(docs) == 1000
    raw = [json.loads(line) for line in (SHARED / "hellaswag" / "hellaswag_val_1000.jsonl").open(encoding="utf-8")]
    for doc, original in zip(docs[:50], raw[:50], strict=True):
        expected = preprocess(
            original["activity_label"] + ": " + original["ctx_a"] + " " + original["ctx_b"].capitalize()
        )
        assert task.doc_to_text(doc) == expected
        assert task.doc_to_choice(doc) == [preprocess(e) for e in original["endings"]]
        assert task.doc_to_target(doc) == int(original["label"])
    assert [m["metric"] for m in task.config.metric_list] == ["acc", "acc_norm"]


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("{not json", "invalid JSON"),
        ('{"ctx_a": "x"}', "missing activity_label"),
        ('{"activity_label": "a", "ctx_a": "b", "ctx_b": "c", "endings": ["x"], "label": 0}', "4 items"),
    ],
)
def test_bad_hellaswag_file_names_file_and_line(tmp_path: Path, own_cache: None, line: str, needle: str) -> None:
    good = (SHARED / "hellaswag" / "hellaswag_val_1000.jsonl").open(encoding="utf-8").readline()
    path = tmp_path / "bench" / "hellaswag" / "val.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text(good + line + "\n", encoding="utf-8")
    with pytest.raises(DataError) as caught:
        load_benchmarks(["hellaswag"], tmp_path / "bench")
    assert f"{path}:2" in str(caught.value) and needle in str(caught.value)


def test_mmlu_folder_without_test_files(tmp_path: Path, own_cache: None) -> None:
    write_csv(tmp_path / "mmlu" / "dev" / "astronomy_dev.csv", [[*QUESTIONS[0], "B"]], header=False)
    with pytest.raises(DataError, match="no test/<subject>_test.csv"):
        load_benchmarks(["mmlu"], tmp_path)


# --- options and suite.toml ---


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str], *needles: str) -> None:
    code = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_unknown_benchmark_name(tiny_suite: Path, tmp_path: Path, capsys) -> None:
    argv = [
        "forgetting",
        str(tiny_suite),
        "--tasks",
        "mmlux",
        "--bench-data",
        str(SHARED),
        "--out",
        str(tmp_path / "r"),
        "--quiet",
    ]
    one_line_error(capsys, argv, "unknown benchmark 'mmlux'", "did you mean 'mmlu'")
    assert not (tmp_path / "r").exists()


def test_missing_bench_data_folder(tiny_suite: Path, tmp_path: Path, capsys) -> None:
    argv = [
        "run",
        str(tiny_suite),
        "--forgetting",
        "mmlu",
        "--bench-data",
        str(tmp_path / "nowhere"),
        "--out",
        str(tmp_path / "r"),
        "--quiet",
    ]
    one_line_error(capsys, argv, "benchmark data directory not found", "--bench-data")


def test_bad_limit_option(tiny_suite: Path, tmp_path: Path, capsys) -> None:
    argv = [
        "run",
        str(tiny_suite),
        "--forgetting",
        "mmlu",
        "--forgetting-limit",
        "0",
        "--out",
        str(tmp_path / "r"),
        "--quiet",
    ]
    one_line_error(capsys, argv, "--forgetting-limit: must be at least 1, got 0")


def test_forgetting_alone_needs_benchmarks(tiny_suite: Path, tmp_path: Path, capsys) -> None:
    one_line_error(
        capsys,
        ["forgetting", str(tiny_suite), "--out", str(tmp_path / "r"), "--quiet"],
        "no benchmarks to run",
        "--tasks",
    )


@pytest.mark.parametrize(
    ("table", "needles"),
    [
        ("[forgetting]\nlimit = 0\n", ("[forgetting]", "limit must be at least 1")),
        ("[forgetting]\nmax_drop = -1\n", ("[forgetting]", "max_drop")),
        ("[forgetting]\ntasks = ['mmlu', 'mmlu']\n", ("[forgetting]", "distinct")),
        ("[forgetting]\nmax_dorp = 2\n", ("max_dorp", "max_drop")),
    ],
)
def test_bad_forgetting_table(tiny_suite: Path, tmp_path: Path, capsys, table: str, needles: tuple[str, ...]) -> None:
    toml = tiny_suite / "suite.toml"
    toml.write_text(toml.read_text(encoding="utf-8") + "\n" + table, encoding="utf-8")
    one_line_error(capsys, ["run", str(tiny_suite), "--out", str(tmp_path / "r"), "--quiet"], str(toml), *needles)


def test_budget_failure_is_recorded_and_exits_1(
    tiny_suite: Path, tmp_path: Path, own_cache: None, monkeypatch, capsys
) -> None:
    """The exit code and the files of a failed budget, with the benchmark result made up (the real
    scoring path is in test_forgetting_real.py)."""
    import harness.forgetting.check as check

    def made_up(variants, pool, reference, settings, benchmarks, progress):  # noqa: ANN001, ANN202
        records = {
            label: [
                {
                    "id": f"x/{i}",
                    "task": "x",
                    "doc_id": i,
                    "target": 0,
                    "loglikelihoods": [0.0, -1.0],
                    "chosen": 0,
                    "metrics": {"acc": float(right)},
                    "prompt_hash": f"p{i}",
                }
                for i, right in enumerate(answers)
            ]
            for label, answers in (("base", [1] * 40), ("canned", [1] * 10 + [0] * 30))
        }
        engine = SimpleNamespace(model=SimpleNamespace(name="m", identity="m@1"), backend="vllm")
        targets = [check.WeightsTarget(label, (label,), engine, None, "vllm") for label in records]
        scores = {
            "mmlu": {label: check.BenchmarkScores(r, check.summarize(r, settings)) for label, r in records.items()}
        }
        result = check.ForgettingResult(
            settings, [{"name": "mmlu", "source": "made up", "items": 40, "primary_metric": "acc"}], targets, scores
        )
        result.comparisons["mmlu"] = {
            "canned": judge(
                check.compare(scores["mmlu"]["base"], scores["mmlu"]["canned"], "acc", settings), "acc", 2.0
            )
        }
        return result

    monkeypatch.setattr(check, "run_forgetting", made_up)
    write_csv(tmp_path / "bench" / "mmlu" / "test" / "astronomy_test.csv", [[*QUESTIONS[0], "B"]], header=False)
    out = tmp_path / "r"
    argv = [
        "run",
        str(tiny_suite),
        "--variants",
        "canned",
        "--forgetting",
        "mmlu",
        "--forgetting-max-drop",
        "2",
        "--bench-data",
        str(tmp_path / "bench"),
        "--out",
        str(out),
        "--quiet",
    ]
    assert main(argv) == 1
    assert "forgetting budget was exceeded" in capsys.readouterr().err
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "failed" and run["forgetting"]["status"] == "failed"
    verdict = run["forgetting"]["benchmarks"]["mmlu"]["weights"]["canned"]["vs_base"]
    assert verdict["status"] == "fail" and verdict["right_to_wrong"] == 30 and verdict["delta"] == pytest.approx(-0.75)
    assert len(read_lines(out / "forgetting" / "mmlu" / "canned.jsonl")) == 40
    assert "FAILED: over budget" in (out / "summary.md").read_text()
    assert (out / "samples" / "canned.jsonl").is_file()  # the task results are kept


def read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_settings_defaults_are_off() -> None:
    assert not ForgettingSettings().enabled
    with pytest.raises(ConfigError):
        from harness.suite.load import check_forgetting

        check_forgetting(ForgettingSettings(tasks=("mmlu",), limit=-3), "x")


def test_the_scorer_setting_picks_packed_trees_or_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a CPU "auto" scores vLLM weights with packed trees on a transformers engine over the same files;
    "engine" keeps vLLM (a LoRA-free engine); on a GPU "auto" keeps vLLM. Handles are lazy: nothing starts."""
    from harness.core import hardware
    from harness.engines import EnginePool
    from harness.engines.models import resolve_model
    from harness.forgetting.check import scoring_engine

    pool = EnginePool()
    served = pool.handle(resolve_model(), "vllm")
    served.require_lora(16)  # the run's engine serves an adapter: scoring must not use it
    monkeypatch.setattr(hardware, "machine", lambda: {"gpus": []})
    engine, adapter, how = scoring_engine(pool, served, None, "auto")
    assert engine.backend == "hf" and engine.model is served.model and adapter is None
    assert how.startswith("transformers forward, packed prefix trees")
    engine, _, how = scoring_engine(pool, served, None, "engine")
    assert engine.backend == "vllm" and engine.lora_free and engine is not served
    assert how.startswith("vllm log-probs") and "LoRA-free engine beside" in how
    monkeypatch.setattr(hardware, "machine", lambda: {"gpus": [{"name": "H200"}]})
    assert scoring_engine(pool, served, None, "auto")[0].backend == "vllm"
    assert scoring_engine(pool, served, None, "packed")[0].backend == "hf"
    assert pool.loads == 0
