"""Hostile input, second pass (issue 14, "classes to close"): values that cannot be right, settings that
were checked only when a variant was built, null where text is expected, tracebacks and unhelpful
messages for a user's mistake, and partial inputs taken in silence. Fake and echo variants only.

Each case ends as one line `error: what - where - how to fix` (exit 2), a one-line warning, or a run
that does what it should."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main

RAG = '\n[variants.rag]\nkind = "rag"\ninner = "canned"\nretriever = "bm25"\n'


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def one_error(code: int, err: str, *needles: str) -> str:
    """Exit 2, no traceback, no usage block: exactly one `error:` line (warnings may precede it)."""
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert "Traceback" not in err and "usage:" not in err, err
    assert len(errors) == 1 and all(line.startswith(("error: ", "warning: ")) for line in lines), err
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


def run(capsys, suite: Path, out: Path, *args: str) -> tuple[int, str]:
    return cli(capsys, "run", str(suite), "--out", str(out), "--quiet", *args)


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "results" / "run"


@pytest.fixture
def finished(tiny_suite: Path, tmp_path: Path, capsys) -> Path:
    """A finished run of the tiny suite, for compare and diff."""
    folder = tmp_path / "done"
    code, err = run(capsys, tiny_suite, folder)
    assert code == 0, err
    return folder


# --- values accepted that cannot be right ------------------------------------------------------------

OUT_OF_RANGE = [
    ("max_tokens = 32", "max_tokens = 32\ntop_p = 2.0", "top_p must be in (0, 1], got 2.0", "[generation] key 'top_p'"),
    ("max_tokens = 32", "max_tokens = 32\ntop_p = 0.0", "top_p must be in (0, 1]", "top_p = 1.0 or 0.9"),
    (
        "max_tokens = 32",
        "max_tokens = 32\ntemperature = -1",
        "temperature must be at least 0, got -1.0",
        "[generation]",
    ),
    ("max_tokens = 32", "max_tokens = 32\ntemperature = nan", "temperature must be a finite number", "nan"),
    ("max_tokens = 32", "max_tokens = 1180591620717411303424", "out of range", "64-bit"),
    ("max_tokens = 32", "max_tokens = 0", "max_tokens must be at least 1, got 0", "key 'max_tokens'"),
    ("max_tokens = 32", "max_tokens = 4096", "leaves no room for a prompt in max_model_len = 2048", "[generation]"),
    ("max_tokens = 32", 'max_tokens = 32\nstop = ["###", ""]', "empty stop string", "key 'stop'"),
    ("batch_size = 4", "batch_size = 0", "batch_size must be in [1, 1000000], got 0", "[run] key 'batch_size'"),
    ("bootstrap = 200", "bootstrap = -1", "bootstrap must be in [0, 100000]", "[run]"),
    ("bootstrap = 200", "bootstrap = 1_000_000_000", "bootstrap must be in [0, 100000]", "bootstrap = 1000"),
    ("seed = 7", "seed = -7", "seed must be at least 0, got -7", "[run] key 'seed'"),
]
TABLES = [
    ("[engine]\ngpu_memory_utilization = 1.5\n", "gpu_memory_utilization must be in (0, 1]"),
    ("[engine]\nkv_cache_gib = 0\n", "kv_cache_gib must be in [1,"),
    ("[engine]\nmax_model_len = -5\n", "max_model_len must be in [1,"),
    ("[engine]\ntensor_parallel_size = 0\n", "tensor_parallel_size must be in [1, 1024], got 0"),
    ("[engine]\npipeline_parallel_size = 2000\n", "pipeline_parallel_size must be in [1, 1024]"),
    ('[engine]\ntensor_parallel_size = "2"\n', "expected an integer, got a string '2'"),
    ("[engine]\ntensor_parallel_size = 2.0\n", "expected an integer, got float 2.0"),
    ("[knowledge]\nchunk_size = 0\n", "chunk_size must be in [1,"),
    ("[knowledge]\nchunk_overlap = -1\n", "chunk_overlap must be at least 0"),
    ("[forgetting]\nmax_drop = 200.0\n", "max_drop must be in [0, 100]"),
    ("[forgetting]\nnum_fewshot = -1\n", "num_fewshot must be in [0, 1000]"),
    ('[forgetting]\nscorer = "packd"\n', "did you mean 'packed'"),
    ("[cost]\ngpu_hour = -1.2\n", "gpu_hour must be at least 0"),
    ("[cost]\ninput_per_mtok = inf\n", "input_per_mtok must be a finite number"),
]


@pytest.mark.parametrize(("old", "new", "what", "where"), OUT_OF_RANGE)
def test_out_of_range_settings(tiny_suite: Path, out: Path, capsys, old: str, new: str, what: str, where: str) -> None:
    edit(tiny_suite / "suite.toml", old, new)
    one_error(*run(capsys, tiny_suite, out), what, where, "suite.toml")
    assert not out.exists()


@pytest.mark.parametrize(("table", "what"), TABLES)
def test_out_of_range_tables(tiny_suite: Path, out: Path, capsys, table: str, what: str) -> None:
    append(tiny_suite / "suite.toml", "\n" + table)
    one_error(*run(capsys, tiny_suite, out), what, "suite.toml [")


@pytest.mark.parametrize(
    ("setting", "what"),
    [
        ('kind = "fake"\ndelay_s = -1.0', "delay_s must be in [0, 3600]"),
        ('kind = "prompted"\nfew_shot = -2', "few_shot must be at least 0"),
        ('kind = "rag"\ninner = "echo"\ntop_k = 0', "top_k must be in [1, 1000000], got 0"),
        ('kind = "base"\nbackend = "vlm"', "did you mean 'vllm'"),
    ],
)
def test_out_of_range_in_a_run_config(
    tiny_suite: Path, out: Path, tmp_path: Path, capsys, setting: str, what: str
) -> None:
    config = tmp_path / "run.toml"
    config.write_text(f'[variants.echo]\nkind = "echo"\n\n[variants.odd]\n{setting}\n', encoding="utf-8")
    one_error(
        *run(capsys, tiny_suite, out, "--config", str(config), "--variants", "echo"), what, "run.toml [variants.odd]"
    )


def test_values_on_the_bounds_are_accepted(tiny_suite: Path, out: Path, capsys) -> None:
    edit(tiny_suite / "suite.toml", "max_tokens = 32", "max_tokens = 1\ntop_p = 1.0\ntemperature = 0\nstop = []")
    edit(tiny_suite / "suite.toml", "bootstrap = 200", "bootstrap = 0")
    append(tiny_suite / "suite.toml", "\n[knowledge]\nchunk_size = 1\nchunk_overlap = 0\n")
    code, err = run(capsys, tiny_suite, out)
    assert code == 0, err
    assert json.loads((out / "run.json").read_text())["suite"]["config"]["generation"]["top_p"] == 1.0


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["run", "{suite}", "--variants", ""], ("--variants '' names nothing", "leave out --variants")),
        (["run", "{suite}", "--variants", " , "], ("names nothing",)),
        (["run", "{suite}", "--limit", "0"], ("argument --limit: must be at least 1, got 0", "harness run")),
        (["run", "{suite}", "--latency-probe", "-3"], ("--latency-probe: must be at least 0",)),
        (["run", "{suite}", "--forgetting-max-drop", "nan"], ("--forgetting-max-drop: must be in [0, 100]",)),
        (["diff", "a", "b", "--top", "-1"], ("argument --top: must be at least 0, got -1", "harness diff")),
        (["history", "r", "--suite", "x", "--last", "0"], ("--last: must be at least 1",)),
        (["check-data", "x.jsonl", "--similarity", "1.5"], ("--similarity: must be in (0, 1]",)),
        (["check-data", "x.jsonl", "--max-len", "ten"], ("--max-len: expected an integer, got 'ten'",)),
        (["finetune", "{suite}", "--lr", "0"], ("--lr: must be in (0, 1]",)),
        (["finetune", "{suite}", "--epochs", "-1"], ("--epochs: must be more than 0",)),
    ],
)
def test_out_of_range_flags(
    tiny_suite: Path, tmp_path: Path, capsys, argv: list[str], needles: tuple[str, ...]
) -> None:
    argv = [a.replace("{suite}", str(tiny_suite)) for a in argv] + (
        ["--out", str(tmp_path / "r")] if argv[0] == "run" else []
    )
    one_error(*cli(capsys, *argv), *needles)
    assert not (tmp_path / "r").exists()


# --- settings checked only when a variant was built -----------------------------------------------------

UNSELECTED = [
    ('[variants.typo]\nkind = "promted"\n', "unknown variant kind 'promted'", "did you mean 'prompted'"),
    ('[variants.p]\nkind = "prompted"\nfew_shot = 5\n', "few_shot = 5 but the train split has 2 items", "[variants.p]"),
    (
        '[variants.r]\nkind = "rag"\ninner = "canned2"\n',
        "inner variant 'canned2' is not declared",
        "did you mean 'canned'",
    ),
    (
        '[variants.r]\nkind = "rag"\ninner = "r2"\n[variants.r2]\nkind = "rag"\ninner = "r"\n',
        "retrieves too",
        "[variants.r",
    ),
    ('[variants.r]\nkind = "rag"\ninner = "r"\n', "inner variant 'r' is not declared", "[variants.r]"),
    (
        '[variants.r]\nkind = "rag"\ninner = "echo"\ntemplate = "{ctx} {input}"\n',
        "unknown placeholder {ctx}",
        "[variants.r]",
    ),
    ('[variants.b]\nkind = "base"\nbackend = "torch"\n', "unknown backend 'torch'", "[variants.b] key 'backend'"),
    (
        "[knowledge]\nchunk_size = 50\nchunk_overlap = 50\n",
        "chunk_overlap = 50 must be less than chunk_size = 50",
        "[knowledge]",
    ),
]


@pytest.mark.parametrize(("table", "what", "where"), UNSELECTED)
def test_unselected_variants_are_checked_at_load(
    tiny_suite: Path, out: Path, capsys, table: str, what: str, where: str
) -> None:
    append(tiny_suite / "suite.toml", "\n" + table)
    one_error(*run(capsys, tiny_suite, out, "--variants", "echo"), what, where)
    assert not out.exists()


def test_unselected_variant_in_a_run_config_is_checked(tiny_suite: Path, out: Path, tmp_path: Path, capsys) -> None:
    config = tmp_path / "run.toml"
    config.write_text(
        '[variants.echo]\nkind = "echo"\n\n[variants.r]\nkind = "rag"\ninner = "nobody"\n', encoding="utf-8"
    )
    one_error(
        *run(capsys, tiny_suite, out, "--config", str(config), "--variants", "echo"),
        "inner variant 'nobody'",
        "run.toml [variants.r]",
    )


def test_check_data_checks_the_suites_variants_too(tiny_suite: Path, capsys) -> None:
    append(tiny_suite / "suite.toml", '\n[variants.p]\nkind = "prompted"\nfew_shots = 1\n')
    one_error(
        *cli(capsys, "check-data", str(tiny_suite), "--estimate-tokens"),
        "unknown key 'few_shots'",
        "did you mean 'few_shot'",
    )


# --- null where text is expected -------------------------------------------------------------------------


@pytest.mark.parametrize("data", ["eval.jsonl", "train.jsonl"])
def test_null_template_field_is_an_error_with_file_and_line(tiny_suite: Path, out: Path, capsys, data: str) -> None:
    append(tiny_suite / data, json.dumps({"id": "nul", "country": None, "output": '{"capital": "x"}'}) + "\n")
    line = len((tiny_suite / data).read_text().splitlines())
    one_error(*run(capsys, tiny_suite, out), "has null in field 'country'", f"{data}:{line}", '"" for none')


def test_null_in_the_query_template_too(tiny_suite: Path, out: Path, capsys) -> None:
    edit(tiny_suite / "suite.toml", "[generation]", 'query = "{country} {region}"\n\n[generation]')
    for path in (tiny_suite / "eval.jsonl", tiny_suite / "train.jsonl"):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        path.write_text(
            "".join(json.dumps({**row, "region": "EU" if row["id"] != "de" else None}) + "\n" for row in rows)
        )
    one_error(*run(capsys, tiny_suite, out), "null in field 'region'", "eval.jsonl:2")


def test_check_data_reports_a_null_field(tiny_suite: Path, capsys) -> None:
    append(tiny_suite / "eval.jsonl", json.dumps({"id": "nul", "country": None, "output": '{"capital": "x"}'}) + "\n")
    code = main(["check-data", str(tiny_suite), "--estimate-tokens", "--json"])
    report = json.loads(capsys.readouterr().out)
    found = [f for f in report["findings"] if f["code"] == "null_field"]
    assert code != 0 and found and found[0]["where"].endswith("eval.jsonl:7"), report["findings"]


def test_check_data_names_null_as_json_does(tmp_path: Path, capsys) -> None:
    data = tmp_path / "eval.jsonl"
    data.write_text(json.dumps({"input": None, "output": "x"}) + "\n")
    main(["check-data", str(data), "--estimate-tokens"])
    text = capsys.readouterr().out
    assert "'input' must be a string, got null" in text and "NoneType" not in text, text


# --- [engine] parallelism: parsed, range-checked, refused where it cannot run, passed to vLLM ------------


def test_parallel_sizes_parse_and_reach_the_vllm_arguments() -> None:
    from harness.config.parse import parse_table
    from harness.config.settings import EngineSettings
    from harness.engines.vllm_engine import llm_kwargs

    settings = parse_table(EngineSettings, {"tensor_parallel_size": 4, "pipeline_parallel_size": 2}, "s.toml", "engine")
    assert (settings.tensor_parallel_size, settings.pipeline_parallel_size) == (4, 2)
    kwargs = llm_kwargs("/m", settings, on_cpu=False)
    assert kwargs["tensor_parallel_size"] == 4 and kwargs["pipeline_parallel_size"] == 2
    # one device: vLLM is started exactly as before the settings existed
    plain = llm_kwargs("/m", EngineSettings(dtype="bfloat16"), on_cpu=True, max_lora_rank=8)
    assert "tensor_parallel_size" not in plain and "pipeline_parallel_size" not in plain
    assert plain == {
        "model": "/m",
        "dtype": "bfloat16",
        "max_model_len": 2048,
        "enforce_eager": True,
        "seed": 0,
        "disable_log_stats": False,
        "gpu_memory_utilization": 0.4,  # on CPU: cpu_memory_utilization
        "enable_lora": True,
        "max_lora_rank": 8,
        "max_loras": 1,
    }
    assert "data_parallel_size" not in llm_kwargs("/m", settings, on_cpu=False)  # raises offline (vLLM #27282)


@pytest.mark.parametrize("flag", [(), ("--backend", "hf")])
def test_parallel_sizes_with_the_hf_backend_are_refused_at_load(
    tiny_suite: Path, out: Path, capsys, flag: tuple[str, ...]
) -> None:
    backend = "" if flag else 'backend = "hf"\n'
    append(tiny_suite / "suite.toml", f"\n[engine]\n{backend}tensor_parallel_size = 2\npipeline_parallel_size = 3\n")
    line = one_error(*run(capsys, tiny_suite, out, *flag), "tensor_parallel_size = 2 and pipeline_parallel_size = 3")
    assert "the hf backend runs a model on one device" in line and '[engine] backend - use backend = "vllm"' in line
    assert not out.exists()


def test_parallel_sizes_are_recorded_and_keyed_like_dtype(tiny_suite: Path, out: Path, capsys) -> None:
    from harness.config.settings import EngineSettings
    from harness.engines.cache import engine_identity
    from harness.engines.models import ResolvedModel

    append(tiny_suite / "suite.toml", "\n[engine]\ntensor_parallel_size = 2\n")
    code, err = run(capsys, tiny_suite, out)
    assert code == 0, err
    record = json.loads((out / "run.json").read_text())
    assert record["engine"]["settings"]["tensor_parallel_size"] == 2
    assert record["engine"]["settings"]["pipeline_parallel_size"] == 1
    assert record["suite"]["config"]["engine"]["tensor_parallel_size"] == 2

    model = ResolvedModel("m", "/m", "sha256:00")
    one = engine_identity(EngineSettings(), "vllm", model, None)
    assert "tensor_parallel_size" not in one  # a one-device engine's cache keys are what they were
    split = engine_identity(EngineSettings(tensor_parallel_size=2), "vllm", model, None)
    assert split == {**one, "tensor_parallel_size": 2}
    assert engine_identity(EngineSettings(pipeline_parallel_size=2), "vllm", model, None) != one
