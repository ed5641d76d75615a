"""A self-contained HTML report of a variant comparison: tables, plots and a side-by-side sample browser.

The file opens from disk with no network: CSS and a few lines of JS are inline and the plots are base64
data URIs (they are also written as PNG files under plots/). Every string that comes from the data, model
output above all, goes through `html.escape(..., quote=True)`; the JS only toggles `hidden` on blocks that
were rendered here, so model output is never turned into markup in the browser.

This module holds the page skeleton (CSS, JS) and the entry point; the parts live beside it: html_tables,
html_plots, html_samples, and html_format for the escaping and number formatting they share.
"""

from __future__ import annotations

from pathlib import Path

from harness.compare.html_format import esc
from harness.compare.html_plot_base import figure_html
from harness.compare.html_plots import make_plots
from harness.compare.html_samples import sample_browser
from harness.compare.html_tables import (
    break_even_html,
    decision_html,
    detail_html,
    forgetting_table,
    header_html,
    scorecard_html,
)
from harness.compare.scorecard import ordered_rows
from harness.core.files import make_folder, write_file

CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right;vertical-align:top}
th:first-child,td:first-child{text-align:left}
tbody th{font-weight:normal;overflow-wrap:anywhere;max-width:14em}
h1{margin:.2em 0 .1em} h2{margin:.9em 0 .3em} p.facts{margin:0 0 .5em;color:#555;font-size:.85em}
p.facts .fact{color:#222}
#decision p{margin:.3em 0} #decision ul.evidence{margin:.2em 0;padding-left:1.4em;font-size:.9em}
#scorecard{font-size:.95em;margin-bottom:.3em} #scorecard td{white-space:nowrap}
#scorecard .src{display:block;font-size:.75em;color:#666}
#scorecard .text{text-align:left;white-space:normal}
details{margin:.25em 0} details>summary{cursor:pointer} details[open]>summary{margin-bottom:.2em}
details.metric table,#usage table,#forgetting,#break-even{margin:.3em 0 .8em}
thead th{background:#f2f2f2}
td.sig{font-weight:bold}
td.better{background:#e3f4e3} td.worse{background:#f8e0e0}
figure{display:inline-block;margin:0 1em 1em 0;max-width:100%}
figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:.85em;max-width:60em}
.outputs{display:grid;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));gap:.75em}
.variant{border:1px solid #ccc;padding:.5em;min-width:0} .variant h4{margin:.2em 0}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f7f7f7;padding:.5em;max-height:30em;overflow:auto;margin:.3em 0}
.note{color:#666;font-size:.85em}
.flags .flag{display:inline-block;background:#fff3cd;border:1px solid #e0c060;border-radius:3px;padding:0 .4em;margin:0 .3em .2em 0;font-size:.85em}
.wrong{color:#b00020;font-weight:bold;margin:.2em 0} mark.wrong{background:#f8d0d0;color:inherit}
table.scores tr.fail td{color:#b00020;background:#fbe9e9}
"""

# Only toggles visibility of server-rendered blocks and options, and writes one count as text: it reads no
# data (the filter compares fixed tokens in data-f, the item select compares integers) and writes no markup.
JS = """
(function () {
  var select = document.getElementById("item-select");
  var filter = document.getElementById("sample-filter");
  var count = document.getElementById("filter-count");
  if (!select) return;
  function show() {
    var blocks = document.querySelectorAll("#samples .item");
    for (var i = 0; i < blocks.length; i++) {
      blocks[i].hidden = blocks[i].getAttribute("data-item") !== select.value;
    }
  }
  function narrow() {
    var want = filter ? filter.value : "all";
    var first = null, current = null, shown = 0;
    for (var i = 0; i < select.options.length; i++) {
      var option = select.options[i];
      var flags = " " + (option.getAttribute("data-f") || "") + " ";
      var on = want === "all" || flags.indexOf(" " + want + " ") >= 0;
      option.hidden = !on;
      option.disabled = !on;
      if (on) {
        shown++;
        if (first === null) first = option;
        if (option.value === select.value) current = option;
      }
    }
    select.value = current ? current.value : first ? first.value : "";
    if (count) count.textContent = shown + " shown";
    show();
  }
  select.addEventListener("change", show);
  if (filter) filter.addEventListener("change", narrow);
  narrow();
})();
"""


def write_html_report(
    comparison: dict, samples: dict[str, list[dict]], out_dir: Path, decision: dict | None = None
) -> Path:
    """Write out_dir/report.html (self-contained, opens from disk, no network) and the plots as PNG
    files under out_dir/plots/; return the report path. `decision` (table.run_decision's) goes on top."""
    out_dir = Path(out_dir)
    plot_dir = make_folder(out_dir / "plots")
    plots = make_plots(comparison, samples)
    for plot in plots:
        write_file(plot_dir / f"{plot.name}.png", plot.png)
    run = comparison.get("run") or {}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Comparison: {esc(run.get('suite', ''))} {esc(run.get('run_id', ''))}</title>",
        f"<style>{CSS}</style></head><body>",
        header_html(comparison),
        # The first screen: what to ship (when the suite sets a target), then the scorecard; the rest folds.
        *([decision_html(decision)] if decision else []),
        scorecard_html(comparison),
        detail_html(comparison),
        forgetting_table(list(ordered_rows(comparison)) if comparison.get("rows") else []),
        break_even_html(comparison.get("cost") or {}),
        "<h2>Plots</h2>",
        "".join(figure_html(p) for p in plots) or '<p class="note">No data to plot.</p>',
        sample_browser(comparison, samples),
        f"<script>{JS}</script>",
        "</body></html>",
    ]
    path = out_dir / "report.html"
    write_file(path, "\n".join(parts))  # atomic: a full disk keeps the previous report whole
    return path
