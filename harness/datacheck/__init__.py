"""`harness check-data`: find what is wrong with eval and training data before it costs a run.

    check_data(paths, CheckOptions(...)) -> Report     every check; a suite folder or JSONL files
    report_text(report), report_json(report)           the report for people, and as stable JSON
    fast_checks(suite) -> list[Finding]                 the cheap subset, for `harness run` to call first

Modules: `findings` collects and counts the problems; `reading` turns a file's lines into Records
or findings, reading each line in a plain layout (`layouts`) or as the suite does (`suite_records`);
`records` holds the Record and the normalized text key. `pool` holds the records of one role; over
them `checks` has the exact checks and `fast_checks`, `near_duplicates` the TF-IDF near duplicates
and near leakage, `lengths` the length, context and size checks, `tool_checks` the tool-calling
records (calls against the record's tools and their schemas, call ids, tool-name balance). `report`
picks files and roles, counts tokens and renders. See docs/check-data.md.

May import harness.finetune (its size guidance) and the layers below; harness.run calls the fast checks.
"""

from harness.datacheck.checks import fast_checks
from harness.datacheck.findings import Finding, Omitted
from harness.datacheck.lengths import Limits
from harness.datacheck.records import Record
from harness.datacheck.report import (
    EXIT_CLEAN,
    EXIT_ERRORS,
    CheckOptions,
    FileSummary,
    Report,
    check_data,
    report_json,
    report_text,
    write_report,
)

__all__ = [
    "EXIT_CLEAN",
    "EXIT_ERRORS",
    "CheckOptions",
    "FileSummary",
    "Finding",
    "Limits",
    "Omitted",
    "Record",
    "Report",
    "check_data",
    "fast_checks",
    "report_json",
    "report_text",
    "write_report",
]
