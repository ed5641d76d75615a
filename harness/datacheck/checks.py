"""The exact checks over sets of records: duplicates, contradictions, leakage, label balance; and
`fast_checks`, the cheap subset `harness run` calls.

A `Pool` (harness.datacheck.pool) is the records of one role (all train files, all eval files, or one
file of unknown role). Exact checks group by a hash of the normalized input, in one pass. Near
duplicates are in harness.datacheck.near_duplicates; lengths, context and size in harness.datacheck.lengths.

Severity rules (docs/check-data.md): anything that makes eval numbers wrong or a run fail is an
error (leakage, contradictory eval references, eval prompts over the context); what weakens training or
blurs scores is a warning; guidance is info.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from harness.datacheck.findings import Finding, Findings, file_of
from harness.datacheck.lengths import context_checks, estimate_tokens, size_guidance, suite_limits
from harness.datacheck.pool import Pool, places, some_of
from harness.datacheck.records import Record, text_key
from harness.datacheck.suite_records import records_of, suite_layout

if TYPE_CHECKING:
    from harness.suite.load import Suite

RARE_CLASS, IMBALANCE_RATIO = 5, 0.1
MAX_CLASSES = 20  # outputs with at most this many distinct values are treated as class labels


def exact_checks(pool: Pool, out: Findings) -> None:
    """Same normalized input twice: a duplicate (same output) or a contradiction (different outputs)."""
    groups: dict[bytes, list[int]] = defaultdict(list)
    for index, key in enumerate(pool.keys):
        groups[key].append(index)
    for indexes in groups.values():
        if len(indexes) > 1:
            _same_input(pool, [pool.records[i] for i in indexes], out)


def _same_input(pool: Pool, records: list[Record], out: Findings) -> None:
    first, file = records[0], file_of(records[0].where)
    by_answer: dict[tuple[bytes, bytes], list[Record]] = defaultdict(list)
    for record in records:
        by_answer[(text_key(record.output), text_key(record.rejected or ""))].append(record)
    for copies in by_answer.values():
        if len(copies) > 1:
            out.add(
                "warning",
                "duplicate",
                f"duplicate (same normalized input and output): also at {places(copies[1:], file)}",
                copies[0].where,
                "drop the copies: they over-weight one example in training and in scores",
            )
    if first.rejected is not None:  # preference data: several pairs per prompt are normal
        chosen = {text_key(r.output) for r in records}
        if chosen & {text_key(r.rejected or "") for r in records}:
            out.add(
                "warning",
                "preference_conflict",
                f"an answer is chosen in one pair and rejected in another for this prompt "
                f"(pairs at {places(records, file)})",
                first.where,
                "decide which answer is preferred",
            )
        return
    outputs = {text_key(r.output) for r in records}
    if len(outputs) > 1:
        evaluating = pool.role == "eval"
        fix = "keep one reference per input: " + ("no answer can match both" if evaluating else "training learns noise")
        out.add(
            "error" if evaluating else "warning",
            "contradiction",
            f"the same input has {len(outputs)} different outputs (also at {places(records[1:], file)})",
            first.where,
            fix,
        )


def leakage_exact(train: Pool, eval_pool: Pool, out: Findings) -> None:
    """Eval inputs that also appear (normalized) in the training data."""
    seen: dict[bytes, int] = {}
    for index, key in enumerate(train.keys):
        seen.setdefault(key, index)
    for record, key in zip(eval_pool.records, eval_pool.keys, strict=True):
        if key in seen:
            other = train.records[seen[key]]
            same = "same" if text_key(other.output) == text_key(record.output) else "a different"
            out.add(
                "error",
                "leakage",
                f"input also in the train data, with {same} output, at {other.where}",
                record.where,
                "remove it from the train data (or from eval): eval scores would reward memorisation",
            )


def balance(pool: Pool, out: Findings) -> None:
    """Labels (or classification-like outputs): a class under 10% of the largest, or under 5 examples."""
    labels = [r.label for r in pool.records if r.label is not None]
    # tool-calling chat records without a label are labelled by the functions they call: say so
    tools = any(r.label_source == "tool name" for r in pool.records if r.label is not None)
    source = "tool name" if tools else "label"  # "tool names are imbalanced", "2 tool name(s) with fewer..."
    if len(labels) < len(pool.records) / 2:
        labels, source = [r.output.strip() for r in pool.records], "output"
        if not 2 <= len(set(labels)) <= min(MAX_CLASSES, len(labels) // 4):
            return
    counts = Counter(labels)
    if len(counts) < 2:
        return
    (big, most), (small, least) = counts.most_common()[0], counts.most_common()[-1]
    if least < IMBALANCE_RATIO * most:
        out.add(
            "warning",
            "label_imbalance",
            f"{source}s are imbalanced: '{_cut(small)}' has {_n(least, 'item')}, '{_cut(big)}' {most}",
            pool.file,
            "add examples that call the rare tools (or of the rejections)"
            if source == "tool name"
            else "add examples of the rare classes; judge eval by per-class metrics (macro F1)",
            pool.file,
        )
    rare = [(label, n) for label, n in sorted(counts.items(), key=lambda kv: (kv[1], kv[0])) if n < RARE_CLASS]
    if rare:
        shown = some_of([f"'{_cut(label)}' ({n})" for label, n in rare])
        out.add(
            "warning",
            "rare_label",
            f"{len(rare)} {source if source == 'tool name' else source + ' value'}(s) with fewer than {RARE_CLASS} examples: {shown}",
            pool.file,
            "add examples, or merge rare classes: a few items say little",
            pool.file,
        )


def unseen_labels(train: Pool, eval_pool: Pool, out: Findings) -> None:
    known = {r.label for r in train.records if r.label is not None}
    missing = Counter(r.label for r in eval_pool.records if r.label is not None and r.label not in known)
    if known and missing:
        shown = some_of([f"'{_cut(label)}' ({n})" for label, n in missing.most_common()])
        out.add(
            "warning",
            "unseen_label",
            f"{len(missing)} eval label(s) never seen in the train data: {shown}",
            eval_pool.file,
            "add train examples of them, or expect fine-tuning to miss them",
            eval_pool.file,
        )


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _cut(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def fast_checks(suite: Suite) -> list[Finding]:
    """The cheap checks, for `harness run` before it generates: exact duplicates, contradictions and
    leakage by normalized-input hash, empty fields, size guidance and context length by a characters/4
    estimate. No tokenizer, no scikit-learn: well under a second for 10k items."""
    layout = suite_layout(suite.config)
    config, out = suite.config, Findings()
    pools = []
    for role, items, name in (
        ("eval", suite.eval_items, config.data.eval),
        ("train", suite.train_items, config.data.train),
    ):
        if name is None:
            continue
        file = file_of(items[0].source) if items and items[0].source else str(Path(suite.dir) / name)
        for item in items:
            empty = [
                key
                for key in layout.template.fields()
                if isinstance(item.fields.get(key), str) and not item.fields[key].strip()
            ]
            if empty or not item.reference.strip():
                what = f"'{empty[0]}'" if empty else "the reference"
                out.add(
                    "error",
                    "empty_field",
                    f"{what} is empty or whitespace",
                    item.source,
                    "fill it in or drop the record",
                )
        pool = Pool(role, file, records_of(items, layout))
        pool.tokens_in = estimate_tokens([r.prompt_text for r in pool.records])
        pool.tokens_out = estimate_tokens([r.output for r in pool.records])
        exact_checks(pool, out)
        size_guidance(pool, out)
        context_checks(pool, suite_limits(config), False, out)
        pools.append(pool)
    if len(pools) == 2:
        leakage_exact(pools[1], pools[0], out)
    return out.result()
