"""Hostile input, second pass (issue 14): `--out` in the way, messages that must help (BOM, roles,
metric tables, stop strings, gates, folders and FIFOs, argparse, Ctrl-C), and partial inputs that must
not pass in silence (fake outputs, a run.json without metrics). Fake and echo variants only."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from test_hostile_config import append, cli, edit, finished, one_error, out, run  # noqa: F401 (fixtures)

from harness.cli import main
from harness.variants.fake import FakeVariant

# --- tracebacks for a user's mistake: --out in the way ---------------------------------------------------


def test_check_data_out_naming_a_folder(tiny_suite: Path, tmp_path: Path, capsys) -> None:
    one_error(
        *cli(capsys, "check-data", str(tiny_suite), "--estimate-tokens", "--out", str(tmp_path)),
        f"--out {tmp_path} is a folder",
        "name a file",
    )


@pytest.mark.parametrize("command", ["compare", "diff", "history"])
def test_out_naming_a_file(finished: Path, tmp_path: Path, capsys, command: str) -> None:
    blocker = tmp_path / "taken.txt"
    blocker.write_text("keep me\n")
    argv = {
        "compare": [str(finished)],
        "diff": [str(finished), str(finished)],
        "history": [str(tmp_path), "--suite", "tiny"],
    }[command]
    one_error(
        *cli(capsys, command, *argv, "--out", str(blocker)), "is a file, not a folder", f"harness {command} --out"
    )
    assert blocker.read_text() == "keep me\n"


def test_run_out_naming_a_file(tiny_suite: Path, tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "taken.txt"
    blocker.write_text("x")
    one_error(*cli(capsys, "run", str(tiny_suite), "--out", str(blocker), "--quiet"), "is a file, not a folder")


def test_out_under_a_file(finished: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "file").write_text("x")
    one_error(
        *cli(capsys, "compare", str(finished), "--baseline", "echo", "--out", str(tmp_path / "file" / "sub")),
        "cannot write",
    )


# --- messages that do not help ------------------------------------------------------------------------------


def test_bom_at_the_start_of_suite_toml_is_accepted(tiny_suite: Path, out: Path, capsys) -> None:
    toml = tiny_suite / "suite.toml"
    toml.write_bytes(b"\xef\xbb\xbf" + toml.read_bytes())
    code, err = run(capsys, tiny_suite, out)
    assert code == 0, err


def test_bom_at_the_start_of_data_and_outputs_is_accepted(tiny_suite: Path, out: Path, capsys) -> None:
    for name in ("eval.jsonl", "canned.jsonl"):
        (tiny_suite / name).write_bytes(b"\xef\xbb\xbf" + (tiny_suite / name).read_bytes())
    code, err = run(capsys, tiny_suite, out)
    assert code == 0, err
    samples = {s["id"]: s for s in map(json.loads, (out / "samples" / "canned.jsonl").read_text().splitlines())}
    assert samples["fr"]["output"] == '{"capital": "Paris"}' and samples["fr"]["scores"]["exact_match"] == 1.0
    code = main(["check-data", str(tiny_suite / "eval.jsonl"), "--estimate-tokens"])
    assert "BOM" not in capsys.readouterr().out and code != 2


@pytest.mark.parametrize(
    ("role", "hint"),
    [("asistant", "did you mean 'assistant'"), ("usr", "did you mean 'user'"), ("bot", "choose one of")],
)
def test_misspelt_role(tiny_suite: Path, out: Path, capsys, role: str, hint: str) -> None:
    record = {"id": "chat", "messages": [{"role": "user", "content": "q"}, {"role": role, "content": "a"}]}
    (tiny_suite / "eval.jsonl").write_text(json.dumps(record) + "\n")
    edit(tiny_suite / "suite.toml", "What is the capital of {country}?", "{input}")
    one_error(*run(capsys, tiny_suite, out), f"message 1 has unknown role '{role}'", "eval.jsonl:1", hint)


@pytest.mark.parametrize(
    ("old", "new", "needles"),
    [
        (
            '{ name = "accuracy", field = "capital" }',
            '{ field = "capital" }',
            ("missing required key 'name'", "metrics'["),
        ),
        (
            '{ name = "accuracy", field = "capital" }',
            '{ name = "accuracy", feild = "capital" }',
            ("unknown key 'feild'", "did you mean 'field'"),
        ),
        (
            "max_tokens = 32",
            'max_tokens = 32\nstop = "###"',
            ("expected an array of strings, got a string '###'", "['###']"),
        ),
        ("max_tokens = 32", "max_tokens = 32.5", ("expected an integer, got", "32.5")),
        ('extract = "json"', 'extract = "jsn"', ("invalid value 'jsn'", "did you mean 'json'")),
    ],
)
def test_type_errors_speak_toml(
    tiny_suite: Path, out: Path, capsys, old: str, new: str, needles: tuple[str, ...]
) -> None:
    edit(tiny_suite / "suite.toml", old, new)
    line = one_error(*run(capsys, tiny_suite, out), *needles)
    assert "MetricSpec" not in line and "tuple" not in line and "<class" not in line


def test_gate_errors_name_the_file_and_gate_number(finished: Path, tmp_path: Path, capsys) -> None:
    gates = tmp_path / "gates.toml"
    gates.write_text('[[gate]]\nmetric = "exact_match"\nmin = 0.1\n\n[[gate]]\nmetric = "exact_mach"\nmin = 0.1\n')
    one_error(
        *cli(capsys, "diff", str(finished), str(finished), "--gate", str(gates)),
        "exact_mach",
        f"{gates} [[gate]] 2",
        "did you mean 'exact_match'",
    )
    gates.write_text('[[gate]]\nmetric = "exact_match"\nmax_drop = -0.1\n')
    one_error(
        *cli(capsys, "diff", str(finished), str(finished), "--gate", str(gates)),
        "max_drop must be at least 0",
        f"{gates} [[gate]] 1",
    )
    gates.write_text('[[gate]]\nmetric = "exact_match"\nvariants = ["canned", "nope"]\nmin = 0.1\n')
    one_error(*cli(capsys, "diff", str(finished), str(finished), "--gate", str(gates)), "variant 'nope'", "[[gate]] 1")


def test_a_folder_where_a_data_file_should_be(tiny_suite: Path, out: Path, capsys) -> None:
    (tiny_suite / "data").mkdir()
    edit(tiny_suite / "suite.toml", 'eval = "eval.jsonl"', 'eval = "data"')
    one_error(*run(capsys, tiny_suite, out), "data file", "is a folder", "regular file")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_where_a_file_should_be_never_blocks(tiny_suite: Path, out: Path, tmp_path: Path, capsys) -> None:
    os.mkfifo(tiny_suite / "pipe.jsonl")
    edit(tiny_suite / "suite.toml", 'outputs = "canned.jsonl"', 'outputs = "pipe.jsonl"')
    one_error(*run(capsys, tiny_suite, out), "outputs file", "not a regular file (a FIFO")
    one_error(*cli(capsys, "check-data", str(tiny_suite / "pipe.jsonl")), "not a regular file")
    os.mkfifo(tmp_path / "run.toml")
    one_error(
        *run(capsys, tiny_suite, tmp_path / "r2", "--config", str(tmp_path / "run.toml")),
        "config file",
        "not a regular file",
    )


def test_knowledge_dir_naming_a_file(tiny_suite: Path, out: Path, capsys) -> None:
    append(
        tiny_suite / "suite.toml",
        '\n[knowledge]\ndir = "eval.jsonl"\n\n[variants.rag]\nkind = "rag"\ninner = "canned"\nretriever = "bm25"\n',
    )
    one_error(*run(capsys, tiny_suite, out, "--variants", "rag"), "knowledge folder", "is a file")


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["run"], "the following arguments are required: suite"),
        (["run", "x", "--bogus"], "unrecognized arguments: --bogus"),
        (["runn"], "invalid choice: 'runn'"),
        (["run", "x", "--backend", "vlm"], "invalid choice: 'vlm'"),
        (["list", "metric"], "invalid choice: 'metric'"),
    ],
)
def test_argparse_mistakes_are_one_line(capsys, argv: list[str], needle: str) -> None:
    code, err = cli(capsys, *argv)
    line = one_error(code, err, needle, "--help")
    assert line.count(" - ") >= 2 and len(err.strip().splitlines()) == 1


def test_help_still_prints_usage(capsys) -> None:
    assert main(["run", "--help"]) == 0
    assert "usage:" in capsys.readouterr().out


def test_ctrl_c_names_the_resume_command(tiny_suite: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    calls = []
    real = FakeVariant.generate

    def interrupted(self, requests):  # noqa: ANN001, ANN202
        calls.append(len(requests))
        if len(calls) == 2:  # after the first batch of 4 was kept
            raise KeyboardInterrupt
        return real(self, requests)

    monkeypatch.setattr(FakeVariant, "generate", interrupted)
    monkeypatch.chdir(tmp_path)  # the default results/<suite>-<time> folder
    code, err = cli(capsys, "run", str(tiny_suite), "--variants", "canned", "--quiet")
    assert code == 130, err
    (out,) = (tmp_path / "results").iterdir()
    again = f"harness run {tiny_suite} --variants canned --quiet --resume results/{out.name}"
    assert (
        err.strip().splitlines()[-1]
        == f"error: interrupted - results/{out.name} keeps the samples done - finish with `{again}`"
    )
    monkeypatch.setattr(FakeVariant, "generate", real)
    code, err = cli(capsys, *again.split()[1:])
    assert code == 0 and (out / "run.json").is_file(), err


def test_ctrl_c_before_any_sample_says_nothing_was_kept(tiny_suite: Path, out: Path, capsys, monkeypatch) -> None:
    def interrupted(self, requests):  # noqa: ANN001, ANN202
        raise KeyboardInterrupt

    monkeypatch.setattr(FakeVariant, "generate", interrupted)
    code, err = run(capsys, tiny_suite, out, "--variants", "canned")
    assert code == 130 and err.strip().splitlines()[-1] == "error: interrupted - nothing was kept", err
    assert not out.exists()


# --- silent partial inputs ---------------------------------------------------------------------------------


def test_fake_outputs_missing_ids_warn_with_the_count(tiny_suite: Path, out: Path, capsys) -> None:
    edit(tiny_suite / "suite.toml", 'default = "I do not know."', "")
    code, err = run(capsys, tiny_suite, out)
    assert code == 0, err
    warned = [line for line in err.splitlines() if "no canned output" in line]
    assert len(warned) == 1 and "for 1 of 6 eval items (e.g. 'at')" in warned[0] and "[variants.canned]" in warned[0], (
        err
    )


def test_fake_outputs_with_a_default_do_not_warn(tiny_suite: Path, out: Path, capsys) -> None:
    code, err = run(capsys, tiny_suite, out)
    assert code == 0 and "warning" not in err, err


def test_fake_outputs_naming_unknown_ids_warn(tiny_suite: Path, out: Path, capsys) -> None:
    append(tiny_suite / "canned.jsonl", '{"id": "france", "output": "x"}\n{"id": "xx", "output": "y"}\n')
    code, err = run(capsys, tiny_suite, out)
    assert code == 0 and "2 canned output(s) name ids that are not eval items (e.g. 'france')" in err, err


def test_duplicate_ids_in_fake_outputs(tiny_suite: Path, out: Path, capsys) -> None:
    append(tiny_suite / "canned.jsonl", '{"id": "de", "output": "second answer"}\n')
    line = len((tiny_suite / "canned.jsonl").read_text().splitlines())
    one_error(
        *run(capsys, tiny_suite, out), "duplicate id 'de'", f"canned.jsonl:{line} and line 2", "one output per id"
    )
    assert not out.exists()


@pytest.mark.parametrize(
    "record", ['{"id": "at", "output": null}', '{"id": null, "output": "x"}', '{"id": true, "output": "x"}']
)
def test_null_in_fake_outputs(tiny_suite: Path, out: Path, capsys, record: str) -> None:
    append(tiny_suite / "canned.jsonl", record + "\n")
    one_error(*run(capsys, tiny_suite, out), "non-null output", "canned.jsonl:6")


def test_compare_of_a_run_without_metrics(finished: Path, capsys) -> None:
    run_json = finished / "run.json"
    data = json.loads(run_json.read_text())
    data.pop("metrics")
    run_json.write_text(json.dumps(data))
    one_error(*cli(capsys, "compare", str(finished), "--baseline", "echo"), "run.json holds no metrics", str(run_json))


def test_compare_of_a_run_missing_one_variants_metrics(finished: Path, capsys) -> None:
    run_json = finished / "run.json"
    data = json.loads(run_json.read_text())
    del data["metrics"]["canned"]
    run_json.write_text(json.dumps(data))
    one_error(
        *cli(capsys, "compare", str(finished), "--baseline", "echo"), "variant 'canned' has no metrics", "damaged"
    )
