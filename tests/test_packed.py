"""Packed log-likelihoods: prefix trees give the same numbers as each sequence alone, with less work.

The numbers are checked on a small randomly initialised Llama (real transformers code, no weights to
download) against plain per-sequence forwards; the real model's parity with lm-eval is in
test_forgetting_real.py."""

from __future__ import annotations

import random

import numpy as np
import pytest

from harness.engines.packed import ancestor_mask, batches, pack, score_packed


def test_shared_prefixes_are_laid_out_once() -> None:
    context = [5, 6, 7]
    pairs = [(context, [8, 9]), (context, [8, 1]), (context, [2]), ([5, 6, 3], [4])]
    (row,) = pack(pairs)
    # inputs drop each sequence's last token: 5 6 7 8 | 5 6 7 8 | 5 6 7 | 5 6 3 -> nodes 5 6 7 8 and 3
    assert sorted(row.tokens) == [3, 5, 6, 7, 8]
    assert len(row.tokens) == 5
    for index, path in zip(row.requests, row.paths):
        context, continuation = pairs[index]
        assert [row.tokens[n] for n in path] == [*context, *continuation][:-1]
        assert [row.depths[n] for n in path] == list(range(len(path)))


def test_mask_lets_a_token_see_only_its_ancestors() -> None:
    (row,) = pack([([1, 2], [3, 4]), ([1, 5], [6])])
    mask = ancestor_mask(row)
    for node, parent in enumerate(row.parents):
        seen = {j for j in range(len(row.tokens)) if mask[node, j]}
        chain, at = {node}, parent
        while at >= 0:
            chain.add(at)
            at = row.parents[at]
        assert seen == chain


def test_rows_respect_the_budget_and_a_long_request_gets_its_own() -> None:
    rng = random.Random(0)
    pairs = [([rng.randrange(100) for _ in range(30)], [rng.randrange(100)]) for _ in range(20)]
    pairs.append((list(range(200)), [1, 2]))
    rows = pack(pairs, row_tokens=100)
    assert sorted(i for row in rows for i in row.requests) == list(range(len(pairs)))
    assert all(len(row.tokens) <= 100 or len(row.requests) == 1 for row in rows)
    assert any(len(row.tokens) > 100 for row in rows)  # the 201-token request, alone


def test_a_sequence_sharing_little_starts_its_own_row_and_rows_batch_by_length() -> None:
    shared = list(range(50))
    pairs = [(shared + [60 + i], [1]) for i in range(5)] + [([90 + i] * 20, [2]) for i in range(4)]
    rows = pack(pairs, pair_cost=2.5e-4)
    # the five questions over one 50-token block share a row; the unrelated ones each get their own
    assert sorted(len(row.requests) for row in rows) == [1, 1, 1, 1, 5]
    groups = batches(rows, batch_tokens=60)
    assert [len(g) for g in groups] == [1, 3, 1]  # the 55-node tree alone; 20-token rows three to a batch
    assert all(len(g[0].tokens) >= len(row.tokens) for g in groups for row in g)
    mask = ancestor_mask(rows[0], width=len(rows[0].tokens) + 3)
    assert mask[-3:, -3:].tolist() == np.eye(3, dtype=bool).tolist() and not mask[-3:, :-3].any()


@pytest.fixture(scope="module")
def tiny_llama():
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=97,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
    )
    return LlamaForCausalLM(config).eval()


def plain(model, context: list[int], continuation: list[int]) -> tuple[float, bool]:
    import torch

    with torch.inference_mode():
        ids = torch.tensor([[*context, *continuation][:-1]])
        logprobs = model(input_ids=ids).logits[0, len(context) - 1 :].float().log_softmax(-1)
    target = torch.tensor(continuation)
    return float(logprobs.gather(1, target[:, None]).sum()), bool((logprobs.argmax(-1) == target).all())


def test_packed_scores_equal_each_sequence_alone(tiny_llama) -> None:
    import torch

    rng = random.Random(1)
    shots = [rng.randrange(97) for _ in range(40)]  # a few-shot block shared by every question
    pairs = []
    for _ in range(6):
        question = shots + [rng.randrange(97) for _ in range(rng.randrange(3, 12))]
        for _ in range(4):  # four endings of different lengths per question
            pairs.append((question, [rng.randrange(97) for _ in range(rng.randrange(1, 6))]))
    pairs.append(([3], [4, 5, 6]))  # a one-token context
    with torch.inference_mode():
        # many small rows one per forward, padded batches of rows, and the widest rows the model allows
        for row_tokens, batch_tokens in ((64, 64), (64, 1024), (4096, 4096)):
            scored = score_packed(tiny_llama, pairs, "cpu", row_tokens, batch_tokens)
            got = {i: (lp, greedy) for i, lp, greedy in scored}
            assert sorted(got) == list(range(len(pairs)))
            for index, (context, continuation) in enumerate(pairs):
                logprob, greedy = plain(tiny_llama, context, continuation)
                assert got[index][0] == pytest.approx(logprob, abs=1e-4)
                assert got[index][1] == greedy
    nodes = sum(len(row.tokens) for row in pack(pairs, pair_cost=0.0, row_tokens=4096))
    assert nodes < sum(len(c) + len(x) - 1 for c, x in pairs) / 4  # the shared block once, not 24 times


def test_greedy_flag_is_true_for_the_models_own_continuation(tiny_llama) -> None:
    import torch

    context = [1, 2, 3, 4]
    with torch.inference_mode():
        greedy = tiny_llama.generate(torch.tensor([context]), max_new_tokens=3, do_sample=False)[0, 4:].tolist()
        wrong = [(greedy[0] + 1) % 97, *greedy[1:]]
        results = {i: g for i, _, g in score_packed(tiny_llama, [(context, greedy), (context, wrong)], "cpu")}
    assert results == {0: True, 1: False}
    assert np.isfinite([lp for _, lp, _ in score_packed(tiny_llama, [(context, greedy)], "cpu")]).all()


def test_a_peft_adapter_is_applied_in_the_tree_too(tiny_llama) -> None:
    import copy

    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(2)
    model = get_peft_model(copy.deepcopy(tiny_llama), LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    for name, weight in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(weight, std=0.5)  # peft starts B at zero: make the adapter change something
    model.eval()
    pairs = [([1, 2, 3, 4], [5, 6]), ([1, 2, 3, 4], [7]), ([9, 8], [7, 6, 5])]
    with torch.inference_mode():
        adapted = {i: lp for i, lp, _ in score_packed(model, pairs, "cpu")}
        with model.disable_adapter():
            base = {i: lp for i, lp, _ in score_packed(model, pairs, "cpu")}
    for index, (context, continuation) in enumerate(pairs):
        assert adapted[index] == pytest.approx(plain(model, context, continuation)[0], abs=1e-4)
        assert base[index] == pytest.approx(plain(tiny_llama, context, continuation)[0], abs=1e-4)
    assert any(abs(adapted[i] - base[i]) > 1e-2 for i in adapted)
