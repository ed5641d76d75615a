"""lm-eval's `LM` interface over a harness engine: the weights a variant answers with, measured by lm-eval.

Tokenization follows lm-eval's `hf` backend exactly (TemplateLM's context/continuation split, the same
special-token rule, BOS as the prefix of an empty context), so per-item answers match that backend on the
same weights; only the forward passes run on the harness's engine (vLLM, or transformers + peft).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lm_eval.api.model import TemplateLM
from lm_eval.models.utils import has_bos_prefix
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window
from tqdm import tqdm

from harness.core.types import GenerationParams
from harness.engines import Adapter, EngineHandle, TokenPair

DEFAULT_MAX_GEN_TOKS = 256  # lm-eval's hf default for generate_until
# Log-likelihood requests per engine call: large enough for the engine to batch, small enough for a
# progress bar that moves.
CHUNK = 512


class HarnessLM(TemplateLM):
    """Log-likelihoods, rolling log-likelihoods and generate_until on one engine (and adapter)."""

    def __init__(
        self, engine: EngineHandle, adapter: Adapter | None = None, max_length: int = 2048, progress: bool = True
    ) -> None:
        super().__init__()
        self.engine = engine
        self.adapter = adapter
        self.tokenizer = engine.tokenizer
        self._max_length = max_length
        self.progress = progress
        self.requests_scored = 0  # log-likelihood requests sent to the engine (the benchmark's count)

    @property
    def eot_token_id(self) -> int:
        return self.tokenizer.eos_token_id

    @property
    def prefix_token_id(self) -> int:
        bos = self.tokenizer.bos_token_id
        return bos if bos is not None else self.tokenizer.eos_token_id

    @property
    def max_length(self) -> int:
        return self._max_length

    @property
    def tokenizer_name(self) -> str:
        return str(self.tokenizer.name_or_path).replace("/", "__")

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kwargs: Any) -> list[int]:
        special = {} if add_special_tokens is None else {"add_special_tokens": add_special_tokens}
        if add_special_tokens is None and has_bos_prefix(string, self.tokenizer.decode(self.prefix_token_id)):
            special["add_special_tokens"] = False
        return self.tokenizer.encode(string, **special)

    def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        # lm-eval's own "Tokenizing inputs" bar flashes by; the scoring bar (self.progress) is the one to watch.
        return super().loglikelihood(requests, disable_tqdm=True)

    def _loglikelihood_tokens(
        self, requests: list[tuple[tuple[str, str], list[int], list[int]]], disable_tqdm: bool = False, **kwargs: Any
    ) -> list[tuple[float, bool]]:
        pairs = [self._fit(context, continuation) for _, context, continuation in requests]
        return self._score(pairs, "log-likelihoods", False)

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        """Perplexity-style tasks: each text in disjoint windows of at most max_length tokens."""
        windows: list[TokenPair] = []
        owners: list[int] = []
        for index, request in enumerate(requests):
            (text,) = request.args
            rolling = get_rolling_token_windows(
                token_list=self.tok_encode(text),
                prefix_token=self.prefix_token_id,
                max_seq_len=self.max_length,
                context_len=1,
            )
            for window in map(make_disjoint_window, rolling):
                windows.append(window)
                owners.append(index)
        totals = [0.0] * len(requests)
        for owner, (logprob, _) in zip(owners, self._score(windows, "rolling log-likelihoods", disable_tqdm)):
            totals[owner] += logprob
        return totals

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        """Plain-text continuations (no chat template, as lm-eval's default), stopped at `until`."""
        outputs: list[str | None] = [None] * len(requests)
        groups: dict[str, list[int]] = {}
        for index, request in enumerate(requests):
            groups.setdefault(repr(sorted(request.args[1].items())), []).append(index)
        for indices in groups.values():
            kwargs = dict(requests[indices[0]].args[1])
            until = kwargs.get("until") or [self.tokenizer.decode(self.eot_token_id)]
            params = GenerationParams(
                max_tokens=int(kwargs.get("max_gen_toks", DEFAULT_MAX_GEN_TOKS)),
                temperature=float(kwargs.get("temperature", 0.0)) if kwargs.get("do_sample") else 0.0,
                stop=tuple([until] if isinstance(until, str) else until),
            )
            budget = self.max_length - params.max_tokens
            prompts = [self.tok_encode(requests[i].args[0])[-budget:] for i in indices]
            for index, text in zip(indices, self.engine.complete(prompts, params, self.adapter)):
                outputs[index] = text
        return [text or "" for text in outputs]

    def _fit(self, context: Sequence[int], continuation: Sequence[int]) -> TokenPair:
        """Left-truncate the context so context + continuation fits the model, as lm-eval's hf does."""
        overflow = len(context) + len(continuation) - self.max_length
        if overflow > 0:
            context = context[overflow:] or context[-1:]
        return list(context), list(continuation)

    def _score(self, pairs: Sequence[TokenPair], what: str, disable_tqdm: bool) -> list[tuple[float, bool]]:
        """In token order, so that requests sharing a prefix (an item's endings, a subject's few-shot
        block) reach the engine in the same call, where it can compute that prefix once."""
        order = sorted(range(len(pairs)), key=lambda i: (*pairs[i][0], *pairs[i][1]))
        results: list[tuple[float, bool]] = [(0.0, False)] * len(pairs)
        with tqdm(
            total=len(pairs), desc=what, unit="req", disable=disable_tqdm or not self.progress, leave=False
        ) as bar:
            for start in range(0, len(order), CHUNK):
                chunk = order[start : start + CHUNK]
                for index, result in zip(chunk, self.engine.loglikelihood([pairs[i] for i in chunk], self.adapter)):
                    results[index] = result
                self.requests_scored += len(chunk)
                bar.update(len(chunk))
        return results
