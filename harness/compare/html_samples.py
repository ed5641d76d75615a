"""The HTML report's sample browser: one block per item (prompt, metadata, reference) with each variant's
output and scores side by side; the page's JS only picks which block is shown."""

from __future__ import annotations

from harness.compare.html_format import esc, fmt


def item_order(samples: dict[str, list[dict]]) -> list[str]:
    seen: dict[str, None] = {}
    for rows in samples.values():
        for s in rows:
            seen.setdefault(str(s.get("id")), None)
    return list(seen)


def variant_column(name: str, sample: dict | None, metrics: list[str]) -> str:
    if sample is None:
        return f'<div class="variant"><h4>{esc(name)}</h4><p class="note">No sample for this item.</p></div>'
    scores = sample.get("scores") or {}
    names = [m for m in metrics if m in scores] + [m for m in scores if m not in metrics]
    score_rows = "".join(f"<tr><td>{esc(m)}</td><td>{fmt(scores[m])}</td></tr>" for m in names)
    return (
        f'<div class="variant" data-variant="{esc(name)}"><h4>{esc(name)}</h4>'
        f'<table class="scores">{score_rows}<tr><td>latency_s</td><td>{fmt(sample.get("latency_s"))}</td></tr></table>'
        f'<pre class="output">{esc(sample.get("output"))}</pre></div>'
    )


def item_block(index: int, item_id: str, by_variant: dict[str, dict[str, dict]], metrics: list[str]) -> str:
    present = [by_variant[v][item_id] for v in by_variant if item_id in by_variant[v]]
    first = present[0] if present else {}
    messages = next((s.get("messages") for s in present if s.get("messages")), None) or []
    prompt = "".join(
        f"<p><b>{esc(m.get('role'))}</b></p><pre>{esc(m.get('content'))}</pre>" for m in messages if isinstance(m, dict)
    )
    meta = first.get("metadata") or {}
    meta_html = "".join(f"<li>{esc(k)}: {esc(v)}</li>" for k, v in meta.items()) if isinstance(meta, dict) else ""
    columns = "".join(variant_column(v, by_variant[v].get(item_id), metrics) for v in by_variant)
    hidden = "" if index == 0 else " hidden"  # the JS takes over; without it the first item still shows
    return (
        f'<div class="item" data-item="{index}"{hidden}><h3>Item {esc(item_id)}</h3>'
        + (f"<details><summary>Prompt</summary>{prompt}</details>" if prompt else "")
        + (f"<details><summary>Metadata</summary><ul>{meta_html}</ul></details>" if meta_html else "")
        + f'<p><b>Reference</b></p><pre class="reference">{esc(first.get("reference"))}</pre>'
        + f'<div class="outputs">{columns}</div></div>'
    )


def sample_browser(comparison: dict, samples: dict[str, list[dict]]) -> str:
    ids = item_order(samples)
    if not ids:
        return '<section id="samples"><h2>Samples</h2><p class="note">No samples.</p></section>'
    ordered = [str(r.get("variant")) for r in comparison.get("rows") or [] if str(r.get("variant")) in samples]
    ordered += [v for v in samples if v not in ordered]
    by_variant = {v: {str(s.get("id")): s for s in samples[v]} for v in ordered}
    # Option values are indexes, not item ids: the JS compares plain integers, never data.
    options = "".join(f'<option value="{i}">{esc(item_id)}</option>' for i, item_id in enumerate(ids))
    metrics = list(comparison.get("metrics") or [])
    blocks = "".join(item_block(i, item_id, by_variant, metrics) for i, item_id in enumerate(ids))
    return (
        f'<section id="samples"><h2>Samples</h2><label for="item-select">Item ({len(ids)}): </label>'
        f'<select id="item-select">{options}</select>{blocks}</section>'
    )
