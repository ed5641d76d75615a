"""Every bad input is one line `error: what - where - how to fix`, exit code 2, no traceback, and no
result directory left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["run", *args, "--quiet"])
    err = capsys.readouterr().err
    return code, err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "results" / "run"


def assert_no_results(out: Path) -> None:
    assert not out.exists()
    parent = out.parent
    assert not parent.exists() or not any(parent.iterdir())


def test_malformed_json_names_file_and_line(tiny_suite: Path, out: Path, capsys) -> None:
    with (tiny_suite / "eval.jsonl").open("a") as handle:
        handle.write('{"id": "x", "country": "Y", \n')
    code, err = run_cli(capsys, str(tiny_suite), "--out", str(out))
    assert_one_line_error(code, err, "malformed JSON", "eval.jsonl:7")
    assert_no_results(out)


def test_missing_template_field_names_field_and_item(tiny_suite: Path, out: Path, capsys) -> None:
    with (tiny_suite / "eval.jsonl").open("a") as handle:
        handle.write('{"id": "nl", "nation": "Netherlands", "output": "{}"}\n')
    code, err = run_cli(capsys, str(tiny_suite), "--out", str(out))
    assert_one_line_error(code, err, "'nl'", "'country'", "eval.jsonl:7")
    assert_no_results(out)


def test_duplicate_ids(tiny_suite: Path, out: Path, capsys) -> None:
    with (tiny_suite / "eval.jsonl").open("a") as handle:
        handle.write('{"id": "fr", "country": "France", "output": "{}"}\n')
    code, err = run_cli(capsys, str(tiny_suite), "--out", str(out))
    assert_one_line_error(code, err, "duplicate id 'fr' on lines 1 and 7", "eval.jsonl:7", "eval.jsonl:1")
    assert_no_results(out)
    # (a line that repeats another exactly is a warning, and the run goes on: tests/test_check_data.py)


def test_many_data_errors_are_all_counted(tiny_suite: Path, out: Path, capsys) -> None:
    """25 empty fields (and one contradiction: the same blank input with 25 answers): the first is named and
    the other 25 counted, though the checks list only 20 of a kind."""
    with (tiny_suite / "eval.jsonl").open("a") as handle:
        for i in range(25):
            handle.write(f'{{"id": "blank{i}", "country": " ", "output": "{{\\"capital\\": \\"X{i}\\"}}"}}\n')
    code, err = run_cli(capsys, str(tiny_suite), "--out", str(out))
    assert_one_line_error(code, err, "'country' is empty or whitespace (and 25 more errors)", "eval.jsonl:7")
    assert_no_results(out)


def test_empty_eval_set(tiny_suite: Path, out: Path, capsys) -> None:
    (tiny_suite / "eval.jsonl").write_text("\n\n")
    code, err = run_cli(capsys, str(tiny_suite), "--out", str(out))
    assert_one_line_error(code, err, "no items", "eval.jsonl")
    assert_no_results(out)


def test_unknown_metric_did_you_mean(tiny_suite: Path, out: Path, capsys) -> None:
    toml = tiny_suite / "suite.toml"
    toml.write_text(toml.read_text().replace('"exact_match",', '"exact_mach",', 1))
    code, err = run_cli(capsys, str(tiny_suite), "--out", str(out))
    assert_one_line_error(code, err, "unknown metric 'exact_mach'", "did you mean 'exact_match'")
    assert_no_results(out)


def test_unknown_variant_kind_did_you_mean(tiny_suite: Path, out: Path, capsys) -> None:
    toml = tiny_suite / "suite.toml"
    toml.write_text(toml.read_text().replace('kind = "echo"', 'kind = "ecco"'))
    code, err = run_cli(capsys, str(tiny_suite), "--out", str(out))
    assert_one_line_error(code, err, "unknown variant kind 'ecco'", "did you mean 'echo'", "[variants.echo]")
    assert_no_results(out)


def test_unknown_variant_name(tiny_suite: Path, out: Path, capsys) -> None:
    code, err = run_cli(capsys, str(tiny_suite), "--out", str(out), "--variants", "caned")
    assert_one_line_error(code, err, "unknown variant 'caned'", "did you mean 'canned'")


def test_unknown_key_did_you_mean(tiny_suite: Path, out: Path, capsys) -> None:
    toml = tiny_suite / "suite.toml"
    toml.write_text(toml.read_text().replace("max_tokens = 32", "max_token = 32"))
    code, err = run_cli(capsys, str(tiny_suite), "--out", str(out))
    assert_one_line_error(code, err, "unknown key 'max_token'", "[generation]", "did you mean 'max_tokens'")
    assert_no_results(out)


def test_unknown_variant_setting(tiny_suite: Path, out: Path, capsys) -> None:
    toml = tiny_suite / "suite.toml"
    toml.write_text(toml.read_text().replace('outputs = "canned.jsonl"', 'output = "canned.jsonl"'))
    code, err = run_cli(capsys, str(tiny_suite), "--out", str(out))
    assert_one_line_error(code, err, "unknown key 'output'", "[variants.canned]", "did you mean 'outputs'")


def test_wrong_type(tiny_suite: Path, out: Path, capsys) -> None:
    toml = tiny_suite / "suite.toml"
    toml.write_text(toml.read_text().replace("max_tokens = 32", 'max_tokens = "32"'))
    code, err = run_cli(capsys, str(tiny_suite), "--out", str(out))
    assert_one_line_error(code, err, "expected an integer", "max_tokens")


def test_missing_data_file(tiny_suite: Path, out: Path, capsys) -> None:
    (tiny_suite / "eval.jsonl").unlink()
    code, err = run_cli(capsys, str(tiny_suite), "--out", str(out))
    assert_one_line_error(code, err, "data file not found", "eval.jsonl")
    assert_no_results(out)


def test_invalid_utf8(tiny_suite: Path, out: Path, capsys) -> None:
    with (tiny_suite / "eval.jsonl").open("ab") as handle:
        handle.write(b'{"id": "x", "country": "Caf\xe9", "output": "{}"}\n')
    code, err = run_cli(capsys, str(tiny_suite), "--out", str(out))
    assert_one_line_error(code, err, "invalid UTF-8", "eval.jsonl:7")
    assert_no_results(out)


def test_invalid_toml(tiny_suite: Path, out: Path, capsys) -> None:
    (tiny_suite / "suite.toml").write_text('name = "tiny"\n[data\n')
    code, err = run_cli(capsys, str(tiny_suite), "--out", str(out))
    assert_one_line_error(code, err, "invalid TOML", "suite.toml")


def test_missing_suite(tmp_path: Path, capsys) -> None:
    code, err = run_cli(capsys, str(tmp_path / "nope"))
    assert_one_line_error(code, err, "no suite.toml")


def test_data_path_outside_suite(tiny_suite: Path, out: Path, capsys) -> None:
    toml = tiny_suite / "suite.toml"
    toml.write_text(toml.read_text().replace('eval = "eval.jsonl"', 'eval = "../../etc/passwd"'))
    code, err = run_cli(capsys, str(tiny_suite), "--out", str(out))
    assert_one_line_error(code, err, "outside the suite folder")


def test_suite_name_with_path_characters(tiny_suite: Path, out: Path, capsys) -> None:
    toml = tiny_suite / "suite.toml"
    toml.write_text(toml.read_text().replace('name = "tiny"', 'name = "../evil"'))
    code, err = run_cli(capsys, str(tiny_suite), "--out", str(out))
    assert_one_line_error(code, err, "invalid suite name")


def test_existing_run_is_not_overwritten(tiny_suite: Path, out: Path, capsys) -> None:
    assert run_cli(capsys, str(tiny_suite), "--out", str(out))[0] == 0
    before = (out / "run.json").read_bytes()
    code, err = run_cli(capsys, str(tiny_suite), "--out", str(out))
    assert_one_line_error(code, err, "already holds a run")
    assert (out / "run.json").read_bytes() == before


def test_bad_limit(tiny_suite: Path, out: Path, capsys) -> None:
    code, err = run_cli(capsys, str(tiny_suite), "--out", str(out), "--limit", "0")
    assert_one_line_error(code, err, "--limit")
