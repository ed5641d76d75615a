"""Hardening against wrong scores and terminal injection: an unusable JSON reference is refused (load
and check-data), a missing answer never matches, and control characters in user data never reach a
terminal or a markdown file raw. Fake and echo variants only: the file runs in seconds."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.cli import main
from harness.config.settings import MetricSpec
from harness.core.errors import DataError
from harness.core.escaping import escape_controls
from harness.datacheck import CheckOptions, check_data
from harness.scoring.answers import Extractor
from harness.scoring.scores import ScoringSample, score
from harness.variants import load_suite


def one_error_line(err: str) -> str:
    """The single `error:` line of a failed command (warnings may precede it), never a traceback."""
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, err
    return errors[0]


def set_reference(suite: Path, line: int, output: object) -> None:
    """Replace the `output` (the reference) of eval.jsonl line `line` (1-based) by `output`."""
    path = suite / "eval.jsonl"
    rows = [json.loads(text) for text in path.read_text().splitlines()]
    rows[line - 1]["output"] = output
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


# --- 1. unusable JSON references --------------------------------------------------------------------

UNUSABLE = ["not json at all", None, 7, False, [], {}, "NaN", "[]", "{}", "null", '"Paris"', ""]


@pytest.mark.parametrize("reference", UNUSABLE, ids=repr)
def test_unusable_json_reference_is_refused_at_load_naming_file_and_line(tiny_suite: Path, reference: object) -> None:
    set_reference(tiny_suite, 2, reference)
    with pytest.raises(DataError) as caught:
        load_suite(tiny_suite)
    assert caught.value.where == f"{tiny_suite / 'eval.jsonl'}:2"
    assert "not a non-empty JSON object" in caught.value.what and "'de'" in caught.value.what
    assert "JSON" in caught.value.fix


def test_reference_without_a_scored_key_is_refused(tiny_suite: Path) -> None:
    set_reference(tiny_suite, 3, '{"city": "Rome"}')
    with pytest.raises(DataError) as caught:
        load_suite(tiny_suite)
    assert caught.value.where.endswith("eval.jsonl:3")
    assert "no key 'capital'" in caught.value.what and "null" in caught.value.fix


def test_reference_with_a_null_value_for_the_key_is_kept_and_only_null_matches_it(tiny_suite: Path) -> None:
    set_reference(tiny_suite, 3, '{"capital": null}')
    suite = load_suite(tiny_suite)
    reference = suite.eval_items[2].reference
    outputs = ['{"capital": null}', '{"other": 1}', "no json", ""]
    specs = [MetricSpec("accuracy", "capital"), MetricSpec("exact_match", "capital")]
    scores, _ = score([ScoringSample(o, reference) for o in outputs], specs, suite.extractor, bootstrap=0)
    assert scores.per_sample["accuracy[capital]"] == [1.0, 0.0, 0.0, 0.0]
    assert scores.per_sample["exact_match[capital]"] == [1.0, 0.0, 0.0, 0.0]


def test_run_with_an_unusable_reference_is_one_line_and_writes_nothing(
    tiny_suite: Path, tmp_path: Path, capsys
) -> None:
    set_reference(tiny_suite, 1, "not json at all")
    out = tmp_path / "run"
    assert main(["run", str(tiny_suite), "--variants", "echo", "--out", str(out), "--quiet"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "eval.jsonl:1" in line and "not a non-empty JSON object" in line
    assert not out.exists()


def test_check_data_reports_unusable_references(tiny_suite: Path, capsys) -> None:
    set_reference(tiny_suite, 1, 7)
    set_reference(tiny_suite, 3, '{"city": "Rome"}')
    report = check_data([str(tiny_suite)], CheckOptions(tokenizer=False))
    found = sorted((f.where.rpartition(":")[2], f.message) for f in report.findings if f.code == "unusable_reference")
    assert [line for line, _ in found] == ["1", "3"], report.findings
    assert "not a non-empty JSON object" in found[0][1] and "no key 'capital'" in found[1][1]
    assert report.exit_code == 1
    assert main(["check-data", str(tiny_suite), "--estimate-tokens"]) == 1
    assert "unusable_reference" in capsys.readouterr().out


def test_check_data_is_quiet_on_usable_references(tiny_suite: Path) -> None:
    report = check_data([str(tiny_suite)], CheckOptions(tokenizer=False))
    assert not [f for f in report.findings if f.code == "unusable_reference"]


def test_a_missing_answer_never_matches_a_reference_that_normalizes_to_nothing() -> None:
    # "A" and "the" normalize (SQuAD: articles dropped) to "", as does an output with no match at all.
    regex = Extractor("regex", r"Answer: (\w+)")
    samples = [ScoringSample("no answer given", "A"), ScoringSample("", "the"), ScoringSample("Answer: A", "A")]
    names = ["exact_match", "accuracy", "token_f1"]
    scores, _ = score(samples, [MetricSpec(n) for n in names], regex, bootstrap=0)
    for name in names:
        assert scores.per_sample[name] == [0.0, 0.0, 1.0], name


def test_an_answer_without_the_key_never_matches_an_empty_value() -> None:
    reference = '{"capital": "", "n": 1}'  # an empty string is a value: an answer must say it
    samples = [
        ScoringSample('{"n": 1}', reference),
        ScoringSample("nothing", reference),
        ScoringSample('{"capital": ""}', reference),
    ]
    specs = [MetricSpec(n, "capital") for n in ("accuracy", "exact_match", "token_f1", "macro_f1")]
    scores, _ = score(samples, specs, Extractor("json"), bootstrap=0)
    assert scores.per_sample["accuracy[capital]"] == [0.0, 0.0, 1.0]
    assert scores.per_sample["exact_match[capital]"] == [0.0, 0.0, 1.0]
    assert scores.per_sample["token_f1[capital]"] == [0.0, 0.0, 1.0]
    # one gold class "", hit once in three: P = 1, R = 1/3 -> F1 = 1/2
    assert scores.summary["macro_f1[capital]"].value == pytest.approx(0.5)


def test_without_field_metrics_an_array_reference_is_usable_and_an_empty_one_is_not(tiny_suite: Path) -> None:
    toml = tiny_suite / "suite.toml"
    text = toml.read_text().replace(
        '{ name = "accuracy", field = "capital" }, { name = "macro_f1", field = "capital" },', ""
    )
    assert "field =" not in text
    toml.write_text(text)
    set_reference(tiny_suite, 1, '["Paris", "Lutetia"]')
    load_suite(tiny_suite)  # a list is a JSON answer exact_match can compare
    set_reference(tiny_suite, 2, "[]")
    with pytest.raises(DataError, match="non-empty JSON object or array"):
        load_suite(tiny_suite)


# --- 4. terminal injection ---------------------------------------------------------------------------

CSI, OSC, C1 = "\x1b[31m", "\x1b]0;pwned\x07", "\x9b2J"
RAW = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # what must never be printed or written as markdown


def hostile_runs(suite: Path, tmp_path: Path) -> tuple[Path, Path]:
    """Two runs of the tiny suite whose item id and model outputs carry ANSI CSI, OSC and C1 sequences."""
    evil_id = f"fr{CSI}{OSC}"
    rows = [json.loads(line) for line in (suite / "eval.jsonl").read_text().splitlines()]
    rows[0]["id"] = evil_id
    (suite / "eval.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    runs = []
    for name, output in (("old", '{"capital": "Paris"}'), ("new", f'{CSI}{{"capital": "Lyon"}} {OSC}{C1}\r')):
        (suite / "canned.jsonl").write_text(json.dumps({"id": evil_id, "output": output}) + "\n")
        out = tmp_path / name
        assert main(["run", str(suite), "--variants", "canned", "--out", str(out), "--quiet"]) == 0
        runs.append(out)
    return runs[0], runs[1]


def test_escape_controls_escapes_every_control_but_newline_and_tab() -> None:
    import unicodedata

    controls = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Cc"]
    assert len(controls) == 65
    for char in controls:
        kept = char in "\n\t"
        assert (escape_controls(char) == char) is kept, repr(char)
        assert (escape_controls(char, json=True) == char) is kept, repr(char)
    assert escape_controls(f"a{CSI}b{OSC}") == "a\\x1b[31mb\\x1b]0;pwned\\x07"
    assert escape_controls("é ✓ 中文 \u200b") == "é ✓ 中文 \u200b"  # printable text is never touched
    text = json.dumps({"x": f"{C1}{CSI}é"}, ensure_ascii=False)
    assert json.loads(escape_controls(text, json=True)) == {"x": f"{C1}{CSI}é"}  # still the same JSON


def test_diff_prints_and_writes_no_raw_control_characters(tiny_suite: Path, tmp_path: Path, capsys) -> None:
    old, new = hostile_runs(tiny_suite, tmp_path)
    capsys.readouterr()
    assert main(["diff", str(old), str(new), "--out", str(tmp_path / "diff")]) == 0
    printed = capsys.readouterr()
    for text in (
        printed.out,
        printed.err,
        (tmp_path / "diff" / "diff.md").read_text(),
        (tmp_path / "diff" / "diff.json").read_text(),
    ):
        assert not RAW.search(text), repr(RAW.search(text))
    assert "`fr\\x1b[31m\\x1b]0;pwned\\x07`" in printed.out  # the id, visibly
    assert '\\x1b[31m{"capital": "Lyon"} \\x1b]0;pwned\\x07\\x9b2J' in printed.out  # the new output, visibly
    found = json.loads((tmp_path / "diff" / "diff.json").read_text())
    assert found["flips"]["canned"][0]["id"] == f"fr{CSI}{OSC}"  # JSON readers get the real string back
    assert main(["diff", str(old), str(new), "--json"]) == 0
    printed = capsys.readouterr().out
    assert not RAW.search(printed) and json.loads(printed)["flips"]["canned"][0]["id"] == f"fr{CSI}{OSC}"


def test_run_summary_compare_and_history_escape_a_hostile_run_folder_name(
    tiny_suite: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / f"results{OSC}" / f"run{CSI}"
    assert main(["run", str(tiny_suite), "--variants", "echo,canned", "--out", str(out), "--quiet"]) == 0
    assert main(["compare", str(out), "--baseline", "echo"]) == 0
    assert main(["history", str(out.parent), "--suite", "tiny", "--out", str(tmp_path / "history")]) == 0
    printed = capsys.readouterr()
    files = [out / "summary.md", out / "report.md", tmp_path / "history" / "history.md"]
    for text in (printed.out, printed.err, *(path.read_text() for path in files)):
        assert not RAW.search(text), repr(RAW.search(text))
    assert "run\\x1b[31m" in (out / "summary.md").read_text()


def test_check_data_and_error_lines_escape_user_data(tiny_suite: Path, tmp_path: Path, capsys) -> None:
    rows = [json.loads(line) for line in (tiny_suite / "eval.jsonl").read_text().splitlines()]
    rows[1]["id"] = rows[0]["id"] = f"x{OSC}"  # a duplicate id, quoted by the finding
    rows[2]["country"] = f"{CSI}Italy"
    (tiny_suite / "eval.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert main(["check-data", str(tiny_suite), "--estimate-tokens"]) == 1
    assert main(["check-data", str(tiny_suite), "--estimate-tokens", "--json"]) == 1
    assert main(["run", str(tiny_suite), "--out", str(tmp_path / "run")]) == 2  # the duplicate id
    assert main(["run", str(tmp_path / f"no-such-suite{CSI}{OSC}")]) == 2
    assert main(["run", str(tiny_suite), "extra", f"--x{CSI}"]) == 2  # argparse: "unrecognized arguments: ..."
    printed = capsys.readouterr()
    assert not RAW.search(printed.out) and not RAW.search(printed.err), repr(printed)
    assert "no-such-suite\\x1b[31m\\x1b]0;pwned\\x07" in printed.err
