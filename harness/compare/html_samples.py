"""The HTML report's sample browser: one block per embedded item (prompt, metadata, reference) with each
variant's output and scores side by side, the fields and metrics that failed marked in red; filters to the
items worth triaging (html_triage picks which are embedded). The page's JS only picks which block is shown."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from harness.compare.html_format import esc, fmt
from harness.compare.html_triage import MAX_TEXT, Triage, choose, higher_is_better, primary_metric, triage

FAIL_ROW = ' class="fail"'
FIELD_METRIC = re.compile(r"^(?P<name>[^\[\]]+)\[(?P<field>.+)\]$")  # accuracy[category], exact_match[a.b]


def item_order(samples: dict[str, list[dict]]) -> list[str]:
    seen: dict[str, None] = {}
    for rows in samples.values():
        for s in rows:
            seen.setdefault(str(s.get("id")), None)
    return list(seen)


def cut(text: Any) -> str:
    """The text as embedded: at most MAX_TEXT characters, saying how many more the samples file holds."""
    text = "" if text is None else str(text)
    if len(text) <= MAX_TEXT:
        return text
    return f"{text[:MAX_TEXT]}\n[... {len(text) - MAX_TEXT:,} more characters in the samples file]"


def failed_score(score: Any, higher: bool | None) -> bool:
    return bool(higher) and not isinstance(score, bool) and isinstance(score, (int, float)) and score == 0


def failures(scores: Mapping[str, Any], higher: Mapping[str, bool | None]) -> tuple[list[str], list[str]]:
    """(wrong fields, failed whole-output metrics) of one sample: a score of exactly 0 on a metric where
    higher is better. A field metric names the field (accuracy[category] 0: category is wrong)."""
    fields: list[str] = []
    metrics: list[str] = []
    for name, score in scores.items():
        if not failed_score(score, higher.get(name)):
            continue
        match = FIELD_METRIC.match(name)
        if match is None:
            metrics.append(name)
        elif match["field"] not in fields:
            fields.append(match["field"])
    return fields, metrics


def marked_output(output: Any, fields: list[str]) -> str:
    """The escaped output with each wrong field's JSON key ("category") in a <mark>. The key is searched in
    the already escaped text as its escaped form, so a match starts and ends on whole entities and the only
    markup added is the <mark> itself."""
    text = esc(cut(output))
    for field in fields:
        key = esc(f'"{field.rsplit(".", 1)[-1]}"')  # a nested field's key is its last part
        text = text.replace(key, f'<mark class="wrong">{key}</mark>')
    return text


def variant_column(name: str, sample: dict | None, metrics: list[str], higher: Mapping[str, bool | None]) -> str:
    if sample is None:
        return f'<div class="variant"><h4>{esc(name)}</h4><p class="note">No sample for this item.</p></div>'
    scores = sample.get("scores") or {}
    names = [m for m in metrics if m in scores] + [m for m in scores if m not in metrics]
    fields, failed = failures(scores, higher)
    bad = {m for m in names if failed_score(scores[m], higher.get(m))}
    score_rows = "".join(
        f"<tr{FAIL_ROW if m in bad else ''}><td>{esc(m)}</td><td>{fmt(scores[m])}</td></tr>" for m in names
    )
    marks = ""
    if fields:
        marks += f'<p class="wrong">Wrong fields: {esc(", ".join(fields))}</p>'
    if failed:
        marks += f'<p class="wrong">Scored 0: {esc(", ".join(failed))}</p>'
    return (
        f'<div class="variant" data-variant="{esc(name)}"><h4>{esc(name)}</h4>{marks}'
        f'<table class="scores">{score_rows}<tr><td>latency_s</td><td>{fmt(sample.get("latency_s"))}</td></tr></table>'
        f'<pre class="output">{marked_output(sample.get("output"), fields)}</pre></div>'
    )


def reasons(item: Triage, baseline: str | None, primary: str | None) -> str:
    found = ["variants disagree"] if item.disagree else []
    found += [f"{v}: {baseline} right, {v} wrong" for v in item.broke]
    found += [f"{v}: {baseline} wrong, {v} right" for v in item.fixed]
    if item.failed:
        found.append(f"{primary} scored 0 for {', '.join(item.failed)}")
    return "".join(f'<span class="flag">{esc(r)}</span>' for r in found)


def item_body(
    item: Triage, by_variant: Mapping[str, Mapping[str, dict]], metrics: list[str], context: dict[str, Any]
) -> str:
    item_id = item.item_id
    present = [by_variant[v][item_id] for v in by_variant if item_id in by_variant[v]]
    first = present[0] if present else {}
    messages = next((s.get("messages") for s in present if s.get("messages")), None) or []
    prompt = "".join(
        f"<p><b>{esc(m.get('role'))}</b></p><pre>{esc(cut(m.get('content')))}</pre>"
        for m in messages
        if isinstance(m, dict)
    )
    meta = first.get("metadata") or {}
    meta_html = "".join(f"<li>{esc(k)}: {esc(v)}</li>" for k, v in meta.items()) if isinstance(meta, dict) else ""
    columns = "".join(variant_column(v, by_variant[v].get(item_id), metrics, context["higher"]) for v in by_variant)
    return (
        f'<h3>Item {esc(item_id)}</h3><p class="flags">{reasons(item, context["baseline"], context["primary"])}</p>'
        + (f"<details><summary>Prompt</summary>{prompt}</details>" if prompt else "")
        + (f"<details><summary>Metadata</summary><ul>{meta_html}</ul></details>" if meta_html else "")
        + f'<p><b>Reference</b></p><pre class="reference">{esc(cut(first.get("reference")))}</pre>'
        + f'<div class="outputs">{columns}</div>'
    )


def filter_options(chosen: list[Triage], ordered: list[str], baseline: str | None, primary: str | None) -> str:
    """The filter's options: value a fixed token (see Triage.flags), label escaped, with the count of
    embedded items it shows; an empty filter is disabled."""
    counts: dict[str, int] = {}
    for item in chosen:
        for flag in item.flags(ordered):
            counts[flag] = counts.get(flag, 0) + 1
    entries = [("all", "All embedded items", len(chosen)), ("d", "Variants disagree", counts.get("d", 0))]
    for k, v in enumerate(ordered):
        if v != baseline and baseline in ordered and primary:
            entries.append((f"r{k}", f"{v} flipped 1 \u2192 0 against {baseline}", counts.get(f"r{k}", 0)))
            entries.append((f"u{k}", f"{v} flipped 0 \u2192 1 against {baseline}", counts.get(f"u{k}", 0)))
    if primary:
        entries.append(("f", f"{primary} failed for some variant", counts.get("f", 0)))
    return "".join(
        f'<option value="{token}"{"" if n else " disabled"}>{esc(label)} ({n:,})</option>'
        for token, label, n in entries
    )


def left_out_note(found: list[Triage], chosen: list[Triage], run_dir: Any) -> str:
    worth = sum(1 for t in found if t.tier < 3)
    worth_in = sum(1 for t in chosen if t.tier < 3)
    where = f" ({esc(run_dir)})" if run_dir else ""
    text = (
        f"Embedded {len(chosen):,} of {len(found):,} items: {worth_in:,} of the {worth:,} worth triaging "
        "(disagreements first, then flips against the baseline, then failures, in item order)"
        + (", then others while there was room." if len(chosen) > worth_in else ".")
    )
    if len(chosen) < len(found):
        text += f" {len(found) - len(chosen):,} left out"
        text += f", {worth - worth_in:,} of them worth triaging" if worth > worth_in else ""
        text += f"; every sample is in the run folder{where}: samples/*.jsonl."
    return f'<p class="note" id="samples-note">{text}</p>'


def sample_browser(comparison: dict, samples: dict[str, list[dict]]) -> str:
    ids = item_order(samples)
    if not ids:
        return '<section id="samples"><h2>Samples</h2><p class="note">No samples.</p></section>'
    ordered = [str(r.get("variant")) for r in comparison.get("rows") or [] if str(r.get("variant")) in samples]
    ordered += [v for v in samples if v not in ordered]
    by_variant = {v: {str(s.get("id")): s for s in samples[v]} for v in ordered}
    metrics = list(comparison.get("metrics") or [])
    baseline = comparison.get("baseline")
    baseline = baseline if baseline in by_variant else None
    primary = primary_metric(comparison)
    higher = higher_is_better(comparison)
    found = triage(ids, by_variant, baseline, primary, higher.get(primary) if primary else None)
    context = {"baseline": baseline, "primary": primary, "higher": higher}
    picked = choose(found, lambda item: item_body(item, by_variant, metrics, context))
    chosen = [item for item, _ in picked]
    # Option values are indexes of the embedded blocks, not item ids: the JS compares plain integers and
    # fixed flag tokens, never data.
    options = "".join(
        f'<option value="{i}" data-f="{" ".join(item.flags(ordered))}">{esc(item.item_id)}</option>'
        for i, item in enumerate(chosen)
    )
    hidden = [("" if i == 0 else " hidden") for i in range(len(picked))]  # without JS the first still shows
    blocks = "".join(f'<div class="item" data-item="{i}"{hidden[i]}>{body}</div>' for i, (_, body) in enumerate(picked))
    return (
        '<section id="samples"><h2>Samples</h2>'
        + left_out_note(found, chosen, (comparison.get("run") or {}).get("dir"))
        + '<label for="sample-filter">Show: </label><select id="sample-filter">'
        + filter_options(chosen, ordered, baseline, primary)
        + f'</select> <label for="item-select">Item ({len(chosen):,}): </label>'
        f'<select id="item-select">{options}</select> <span class="note" id="filter-count"></span>{blocks}</section>'
    )
