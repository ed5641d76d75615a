"""The transformers + peft backend: portable (any machine torch runs on) and the reference that the vLLM
path is checked against. Slower: padded batches, no paged attention.

LoRA adapters load into one PeftModel by name; a request without adapter runs with adapters disabled,
so base and fine-tuned variants share one copy of the weights, as on vLLM.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from harness.config.settings import EngineSettings
from harness.core.errors import ConfigError
from harness.core.hardware import effective_dtype
from harness.core.ties import RUNNER_UPS, token_trace
from harness.core.tools import chat_messages, template_knows_tools
from harness.core.types import Constraint, Generation, GenerationParams, Request
from harness.engines import Adapter, TokenPair
from harness.engines.models import ResolvedModel

MICRO_BATCH = 16  # padded batches waste compute on pad tokens; small groups keep that bounded


class HfEngine:
    backend = "hf"

    def __init__(self, model: ResolvedModel, settings: EngineSettings, max_lora_rank: int = 0) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model.path)
            dtype = effective_dtype(settings.dtype)
            self.model: Any = AutoModelForCausalLM.from_pretrained(model.path, dtype=dtype).to(self.device)
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"transformers could not load model {model.name}: {str(exc).splitlines()[0][:200]}",
                "",
                "check the model path or id",
            ) from None
        self.model.eval()
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        torch.manual_seed(settings.seed)
        self._adapters: dict[str, str] = {}  # sha256 -> peft adapter name
        self._compiler: Any = None  # xgrammar's, made on the first constrained request
        self._grammars: dict[Constraint, Any] = {}

    def generate(self, requests: Sequence[Request], adapter: Adapter | None = None) -> list[Generation]:
        by_constraint: dict[Constraint | None, list[int]] = {}  # one grammar (or none) per padded batch
        for index, request in enumerate(requests):
            by_constraint.setdefault(request.constraint, []).append(index)
        results: list[Generation | None] = [None] * len(requests)
        for indexes in by_constraint.values():
            for start in range(0, len(indexes), MICRO_BATCH):
                group = indexes[start : start + MICRO_BATCH]
                for index, generation in zip(group, self._generate_group([requests[i] for i in group], adapter)):
                    results[index] = generation
        return [g for g in results if g is not None]

    def _generate_group(self, requests: list[Request], adapter: Adapter | None) -> list[Generation]:
        texts = [self._prompt(r) for r in requests]
        inputs = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        params = requests[0].params  # the runner sends one suite's params per batch
        constraint = requests[0].constraint  # generate groups requests by constraint
        kwargs = _generate_kwargs(params, self.tokenizer)
        if constraint is not None:
            from xgrammar.contrib.hf import LogitsProcessor

            kwargs["logits_processor"] = [LogitsProcessor([self._grammar(constraint)] * len(requests))]
        started = time.perf_counter()
        with self._weights(adapter), self.torch.inference_mode():
            output = self.model.generate(
                **inputs, **kwargs, return_dict_in_generate=True, output_logits=True, output_scores=True
            )
            # per step, the top log-probs of every row: the token trace of harness.core.ties. Constrained,
            # from the masked scores: a token the grammar forbids is no near-tie.
            steps = output.scores if constraint is not None else output.logits
            tops = [step.float().log_softmax(-1).topk(RUNNER_UPS + 1, dim=-1) for step in steps]
        wall = time.perf_counter() - started
        new_tokens = output.sequences[:, inputs["input_ids"].shape[1] :]
        generations = []
        for row, request in enumerate(requests):
            ids = [t for t in new_tokens[row].tolist() if t != self.tokenizer.pad_token_id]
            top = [dict(zip(t.indices[row].tolist(), t.values[row].tolist())) for t in tops[: len(ids)]]
            trace = token_trace(ids, top)
            if ids and ids[-1] == self.tokenizer.eos_token_id:
                ids = ids[:-1]
            text = _cut_at_stop(self.tokenizer.decode(ids, skip_special_tokens=True), request.params.stop)
            generations.append(
                Generation(
                    text=text,
                    prompt_tokens=int(inputs["attention_mask"][row].sum()),
                    completion_tokens=len(ids),
                    latency_s=wall,  # the whole padded batch finishes together
                    metadata={"batch_size": len(requests), "trace": trace},
                )
            )
        return generations

    def _prompt(self, request: Request) -> str:
        """The request through the chat template; tools as the template takes them (`tools=`) where it knows
        them, else in the system prompt (harness.core.tools.chat_messages)."""
        messages, tools = chat_messages(request, template_knows_tools(getattr(self.tokenizer, "chat_template", None)))
        extra: dict[str, Any] = {"tools": tools} if tools else {}  # a request without tools: as it always was
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **extra)

    def loglikelihood(self, pairs: Sequence[TokenPair], adapter: Adapter | None = None) -> list[tuple[float, bool]]:
        """Requests packed into prefix trees (harness.engines.packed): a shared context or few-shot block is
        computed once, the output head runs only where a continuation token is predicted."""
        from harness.engines.packed import score_packed

        results: list[tuple[float, bool]] = [(0.0, False)] * len(pairs)
        with self._weights(adapter), self.torch.inference_mode():
            for index, logprob, greedy in score_packed(self.model, pairs, self.device):
                results[index] = (logprob, greedy)
        return results

    def complete(
        self, prompts: Sequence[Sequence[int]], params: GenerationParams, adapter: Adapter | None = None
    ) -> list[str]:
        torch = self.torch
        texts: list[str] = []
        pad = self.tokenizer.pad_token_id
        with self._weights(adapter), torch.inference_mode():
            for start in range(0, len(prompts), MICRO_BATCH):
                group = [list(p) for p in prompts[start : start + MICRO_BATCH]]
                width = max(len(p) for p in group)
                ids = torch.tensor([[pad] * (width - len(p)) + p for p in group], device=self.device)
                mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in group], device=self.device)
                output = self.model.generate(
                    input_ids=ids, attention_mask=mask, **_generate_kwargs(params, self.tokenizer)
                )
                for row in output[:, width:].tolist():
                    eos = self.tokenizer.eos_token_id
                    ids_out = row[: row.index(eos)] if eos in row else [t for t in row if t != pad]
                    texts.append(_cut_at_stop(self.tokenizer.decode(ids_out, skip_special_tokens=True), params.stop))
        return texts

    def _weights(self, adapter: Adapter | None) -> Any:
        """A context in which the model runs with `adapter`, or with no adapter at all."""
        from contextlib import nullcontext

        if adapter is not None:
            self._activate(adapter)
            return nullcontext()
        return self.model.disable_adapter() if self._adapters else nullcontext()

    def _activate(self, adapter: Adapter) -> None:
        from peft import PeftModel

        name = self._adapters.get(adapter.sha256)
        if name is None:
            name = f"a{len(self._adapters)}"
            if isinstance(self.model, PeftModel):
                self.model.load_adapter(adapter.path, adapter_name=name)
            else:
                self.model = PeftModel.from_pretrained(self.model, adapter.path, adapter_name=name)
                self.model.eval()
            self._adapters[adapter.sha256] = name
        self.model.set_adapter(name)

    def _grammar(self, constraint: Constraint) -> Any:
        """The constraint compiled for this tokenizer by xgrammar (vLLM's default grammar backend, so both
        engines read a schema alike), once per constraint."""
        if constraint not in self._grammars:
            import xgrammar as xgr

            if self._compiler is None:
                info = xgr.TokenizerInfo.from_huggingface(self.tokenizer, vocab_size=self.model.config.vocab_size)
                self._compiler = xgr.GrammarCompiler(info)
            try:
                if constraint.kind == "schema":
                    compiled = self._compiler.compile_json_schema(constraint.schema)
                elif constraint.kind == "regex":
                    compiled = self._compiler.compile_regex(constraint.pattern)
                else:  # an EBNF of string literals, as vLLM turns a choice into for xgrammar
                    compiled = self._compiler.compile_grammar(
                        "root ::= " + " | ".join(json.dumps(c, ensure_ascii=False) for c in constraint.choices)
                    )
            except (RuntimeError, ValueError) as exc:
                raise ConfigError(
                    f"xgrammar cannot compile this constraint: {str(exc).splitlines()[0][:300]}",
                    "",
                    "simplify the schema or pattern",
                ) from None
            self._grammars[constraint] = compiled
        return self._grammars[constraint]

    def close(self) -> None:
        self.model = None


def _generate_kwargs(params: GenerationParams, tokenizer: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"max_new_tokens": params.max_tokens, "pad_token_id": tokenizer.pad_token_id}
    if params.temperature > 0:
        kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p)
    else:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    return kwargs


def _cut_at_stop(text: str, stops: Sequence[str]) -> str:
    cut = min((text.find(s) for s in stops if s and s in text), default=-1)
    return text if cut < 0 else text[:cut]
