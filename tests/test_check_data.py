"""`harness check-data`: each check fires on a planted problem and stays quiet on clean data; hostile
files give a report or a one-line error, never a traceback."""

from __future__ import annotations

import json
import random
import shutil
import time
from collections import Counter
from pathlib import Path

import pytest

from harness.cli import main
from harness.config.settings import DataConfig, SuiteConfig
from harness.core.errors import DataError
from harness.core.types import GenerationParams
from harness.datacheck import CheckOptions, Report, check_data, fast_checks, report_text
from harness.datacheck.report import role_from_name
from harness.suite.items import Item
from harness.suite.load import Suite
from harness.variants import load_suite

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "suites" / "support-triage"
VOCAB = [a + b + c for a in "bcdfgklmnprstvz" for b in "aeiou" for c in ("", "n", "r", "s")][:300]


def text(seed: int, words: int = 14) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(VOCAB) for _ in range(words))


def write(path: Path, records: list[dict] | list[bytes]) -> Path:
    with path.open("wb") as handle:
        for record in records:
            handle.write(record if isinstance(record, bytes) else (json.dumps(record) + "\n").encode())
    return path


def chat(prompt: str, answer: str, **extra: object) -> dict:
    return {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}], **extra}


def clean_train(n: int = 120) -> list[dict]:
    return [chat(text(i), f"answer {i % 3}", label=f"class{i % 3}") for i in range(n)]


def clean_eval(n: int = 60) -> list[dict]:
    return [{"prompt": text(10_000 + i), "completion": f"answer {i % 3}", "label": f"class{i % 3}"} for i in range(n)]


def check(*paths: Path, **options: object) -> Report:
    return check_data([str(p) for p in paths], CheckOptions(tokenizer=False, **options))  # type: ignore[arg-type]


def codes(report: Report, severity: str | None = None) -> Counter[str]:
    return Counter(f.code for f in report.findings if severity is None or f.severity == severity)


def lines_of(report: Report, code: str) -> list[int]:
    return sorted(int(f.where.rpartition(":")[2]) for f in report.findings if f.code == code and f.where[-1:].isdigit())


def test_clean_data_has_no_errors_or_warnings(tmp_path: Path) -> None:
    report = check(write(tmp_path / "train.jsonl", clean_train()), write(tmp_path / "eval.jsonl", clean_eval()))
    assert report.exit_code == 0
    assert codes(report, "error") + codes(report, "warning") == Counter(), report.findings
    assert codes(report, "info") == Counter({"small_for_full_finetune": 1, "small_eval": 1})
    assert [(f.role, f.records) for f in report.files] == [("train", 120), ("eval", 60)]


def test_parse_errors_are_all_collected_with_lines_and_capped(tmp_path: Path) -> None:
    good = [(json.dumps(chat(text(i), "a")) + "\n").encode() for i in range(3)]
    bad = [b'{"messages": \xff\xfe}\n', b"{not json\n", b"[1, 2]\n", b"\n", b'"just a string"\n']
    bad += [b"{broken\n"] * 30
    report = check(write(tmp_path / "train.jsonl", good[:1] + bad + good[1:]))
    assert lines_of(report, "invalid_utf8") == [2]
    assert lines_of(report, "not_object") == [4, 6]
    assert lines_of(report, "malformed_json")[:2] == [3, 7]  # keeps going after the first error
    malformed = [f for f in report.findings if f.code == "malformed_json"]
    assert len(malformed) == 20 and [(o.code, o.count) for o in report.omitted] == [("malformed_json", 11)]  # 31 found
    assert report.count("error") == 1 + 2 + 31  # every bad line counts, listed or not
    assert report.files[0].records == 3 and report.exit_code == 1


def test_chat_structure(tmp_path: Path) -> None:
    records = [
        {"messages": [{"role": "User", "content": "hi"}, {"role": "assistant", "content": "x"}]},
        {"messages": [{"role": "user", "content": 3}, {"role": "assistant", "content": "x"}]},
        {"messages": [{"role": "user", "content": "a question"}]},
        {"messages": [{"role": "system", "content": "s"}, {"role": "assistant", "content": "x"}]},
        {"messages": [{"role": "user", "content": " \n"}, {"role": "assistant", "content": "x"}]},
        {"messages": []},
        {
            "messages": [
                {"role": "user", "content": "q"},
                {"role": "system", "content": "late"},
                {"role": "user", "content": "q2"},
                {"role": "assistant", "content": "x"},
            ]
        },
        chat("a fine question", "a fine answer"),
    ]
    report = check(write(tmp_path / "train.jsonl", records))
    assert {f.code: int(f.where.rpartition(":")[2]) for f in report.findings if f.where[-1].isdigit()} == {
        "bad_role": 1,
        "bad_content": 2,
        "last_not_assistant": 3,
        "no_user_turn": 4,
        "empty_field": 5,
        "bad_messages": 6,
        "misplaced_system": 7,
        "near_empty": 4,  # no user turn: its input is the system prompt, "s"
    }
    assert next(f for f in report.findings if f.code == "bad_role").fix == "did you mean 'user'?"
    # system + assistant is legal training data (the model learns to open the conversation): an info, kept
    assert next(f for f in report.findings if f.code == "no_user_turn").severity == "info"
    assert report.files[0].records == 3


def test_completion_and_preference_fields(tmp_path: Path) -> None:
    records = [
        {"prompt": "p1 text", "completion": "   "},
        {"prompt": "p2 text"},
        {"prompt": "p3 text", "chosen": "good", "rejected": "good"},
        {"prompt": "p4 text", "chosen": "good", "rejected": "bad"},
        {"prompt": "p4 text", "chosen": "bad", "rejected": "worse"},
        {
            "prompt": "p5 text",
            "chosen": [{"role": "assistant", "content": "yes"}],
            "rejected": [{"role": "assistant", "content": "no"}],
        },
        {"text": "pretraining style"},
        {"prompt": "p6 text", "completion": 7},
    ]
    report = check(write(tmp_path / "data.jsonl", records))
    found = {(f.code, f.where.rpartition(":")[2]) for f in report.findings}
    assert {
        ("empty_field", "1"),
        ("missing_field", "2"),
        ("chosen_equals_rejected", "3"),
        ("preference_conflict", "4"),
        ("unknown_layout", "7"),
        ("missing_field", "8"),
    } <= found
    assert codes(report, "warning")["mixed_layouts"] == 1
    assert report.files[0].role == "data" and report.files[0].records == 4


def test_duplicates_and_contradictions(tmp_path: Path) -> None:
    train = clean_train()
    train += [
        chat(text(3) + "!", "answer 0", label="class0"),
        chat(text(5), "another answer", label="class2"),
    ]  # 121, 122
    evaluation = clean_eval()
    evaluation += [{"prompt": text(10_007).upper() + " !", "completion": "something else"}]  # line 61
    report = check(write(tmp_path / "train.jsonl", train), write(tmp_path / "eval.jsonl", evaluation))
    duplicate = next(f for f in report.findings if f.code == "duplicate")
    assert (
        duplicate.severity == "warning"
        and duplicate.where.endswith("train.jsonl:4")
        and "line 121" in duplicate.message
    )
    contradictions = {f.where.rsplit("/", 1)[1]: f.severity for f in report.findings if f.code == "contradiction"}
    assert contradictions == {"train.jsonl:6": "warning", "eval.jsonl:8": "error"}  # normalized: case, punctuation


def test_near_duplicates_within_a_set(tmp_path: Path) -> None:
    train = clean_train()
    train.append(chat(text(40, 40), "x", label="class0"))
    train.append(chat(text(40, 40) + " extra", "x", label="class1"))
    report = check(write(tmp_path / "train.jsonl", train))
    near = [f for f in report.findings if f.code == "near_duplicate"]
    assert len(near) == 1 and near[0].severity == "warning"
    assert near[0].where.endswith(":121") and "line 122" in near[0].message
    assert check(write(tmp_path / "train.jsonl", train), similarity=0.999).findings == tuple(
        f for f in report.findings if f.code != "near_duplicate"
    )


def test_leakage_exact_and_near_is_an_error(tmp_path: Path) -> None:
    train = clean_train()
    train += [chat(text(70, 40), "x", label="class0")]
    evaluation = clean_eval()
    evaluation += [{"prompt": text(7) + "?", "completion": "answer 1"}]  # exact (normalized) copy of train line 8
    evaluation += [{"prompt": text(70, 40) + " extra", "completion": "x"}]  # near copy of train line 121
    report = check(write(tmp_path / "train.jsonl", train), write(tmp_path / "eval.jsonl", evaluation))
    leaks = {f.code: f for f in report.findings if "leakage" in f.code}
    assert set(leaks) == {"leakage", "near_leakage"} and {f.severity for f in leaks.values()} == {"error"}
    assert leaks["leakage"].where.endswith("eval.jsonl:61") and "train.jsonl:8" in leaks["leakage"].message
    assert leaks["near_leakage"].where.endswith("eval.jsonl:62") and "train.jsonl:121" in leaks["near_leakage"].message
    assert report.exit_code == 1


def test_exit_codes_and_roles_from_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write(tmp_path / "a.jsonl", clean_train())
    b = write(tmp_path / "b.jsonl", [chat(text(i), "answer 0") for i in range(3)])  # copies of a's inputs
    assert main(["check-data", str(a), str(b), "--estimate-tokens"]) == 0  # roles unknown: no leakage check
    assert capsys.readouterr().out.count("[roles_unknown]") == 2
    assert main(["check-data", "--train", str(a), "--eval", str(b), "--estimate-tokens"]) == 1
    assert "[leakage]" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("train.jsonl", "train"),
        ("sft_training_v2.jsonl", "train"),
        ("eval.jsonl", "eval"),
        ("test-set.jsonl", "eval"),
        ("dev.jsonl", "eval"),
        ("test/data.jsonl", "data"),
        ("data.jsonl", "data"),
        ("train_test.jsonl", "data"),
        ("contest.jsonl", "data"),
        ("toy_chat_fine_tuning.jsonl", "train"),
        ("finetune.jsonl", "train"),
        ("sft.jsonl", "train"),
        ("fineTuning-v2.jsonl", "train"),
        ("sft_test_v2.jsonl", "eval"),
        ("fine_tuning_validation.jsonl", "eval"),
        ("held-out.jsonl", "eval"),
        ("val.jsonl", "eval"),
        ("holdout.jsonl", "eval"),
        ("fine_tuned_outputs.jsonl", "train"),
        ("soft.jsonl", "data"),
        ("interval.jsonl", "data"),
    ],
)
def test_role_from_file_name(name: str, role: str) -> None:
    assert role_from_name(Path(name)) == role


def test_flags_say_the_role_whatever_the_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    named_eval = write(tmp_path / "eval_pool.jsonl", clean_train())
    # copies of train inputs
    named_data = write(tmp_path / "questions.jsonl", [chat(text(i), "answer 0") for i in range(3)])
    report = check(named_data, train=(str(named_eval),), eval=(str(named_data),))
    assert [(Path(f.path).name, f.role) for f in report.files] == [
        ("eval_pool.jsonl", "train"),
        ("questions.jsonl", "eval"),
    ]
    assert codes(report, "error")["leakage"] == 3
    assert main(["check-data", str(named_data), "--train", str(named_eval), "--estimate-tokens", "--json"]) == 0
    assert [f["role"] for f in json.loads(capsys.readouterr().out)["files"]] == ["train", "data"]


def test_every_bad_line_is_counted_and_the_summary_comes_last(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows: list[dict] | list[bytes] = [(json.dumps(chat(text(i), "a")) + "\n").encode() for i in range(13)]
    rows += [b"{broken\n"] * 60 + [(json.dumps({"prompt": f"p{i} text"}) + "\n").encode() for i in range(27)]  # 87 bad
    path = write(tmp_path / "train.jsonl", rows)
    assert main(["check-data", str(path), "--estimate-tokens"]) == 1
    printed = capsys.readouterr().out
    assert printed.splitlines()[-1].startswith("87 errors, ")
    body = [line for line in printed.splitlines() if line.startswith("  error")]
    assert len(body) == 20 + 20 + 2 and [line.split()[-1] for line in body[-2:]] == [
        "[malformed_json]",
        "[missing_field]",
    ]
    assert body[-2].split(None, 1)[1].startswith("and 40 more like this") and "and 7 more like this" in body[-1]
    assert all("more like this" not in line for line in body[:-2])  # listed findings first, summaries last
    assert main(["check-data", str(path), "--estimate-tokens", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["counts"]["error"] == 87 and len([f for f in report["findings"] if f["severity"] == "error"]) == 40
    assert [(o["code"], o["count"]) for o in report["omitted"]] == [("malformed_json", 40), ("missing_field", 7)]
    assert report["files"][0]["lines"] - report["files"][0]["records"] == 87


def test_label_lists_say_how_many_more_they_do_not_name(tmp_path: Path) -> None:
    train = [chat(text(i), "ok", label="common") for i in range(100)]
    train += [chat(text(300 + i), "ok", label=f"rare{i}") for i in range(7)]
    evaluation = [{"prompt": text(10_000 + i), "completion": "ok", "label": f"new{i % 8}"} for i in range(40)]
    report = check(write(tmp_path / "train.jsonl", train), write(tmp_path / "eval.jsonl", evaluation))
    by_code = {f.code: f.message for f in report.findings}
    rare = by_code["rare_label"]
    assert rare.startswith("7 label value(s)") and rare.count("'rare") == 5 and rare.endswith(" and 2 more")
    unseen = by_code["unseen_label"]
    assert unseen.startswith("8 eval label(s)") and unseen.count("'new") == 5 and unseen.endswith(" and 3 more")
    few = check(write(tmp_path / "train.jsonl", train[:103]))
    assert [f.message for f in few.findings if f.code == "rare_label"][0].endswith("'rare2' (1)")  # 3: all named


def test_a_repeated_line_is_one_warning_in_run_and_check_data(
    tiny_suite: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An exact copy (no ids in the file) does not stop `harness run`: one warning naming both lines and
    the content, the first copy scored, the drop recorded in run.json; check-data says the same words."""
    rows = [
        {k: v for k, v in json.loads(line).items() if k != "id"}
        for line in (tiny_suite / "eval.jsonl").read_text().splitlines()
    ]
    lines = [json.dumps(row) for row in rows]
    (tiny_suite / "eval.jsonl").write_text("\n".join([*lines, lines[1]]) + "\n")  # line 7 repeats line 2
    out = tmp_path / "run"
    assert main(["run", str(tiny_suite), "--variants", "echo", "--out", str(out), "--quiet"]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: ")]
    assert len(warned) == 1, warned
    assert (
        warned[0].startswith('warning: line 7 repeats line 2 exactly ({"country": "Germany", ')
        and "dropped, line 2 is used" in warned[0]
    )
    run = json.loads((out / "run.json").read_text())
    assert run["data"]["eval_items"] == 6 and run["data"]["repeated_lines"] == [
        {"file": "eval.jsonl", "line": 7, "same_as": 2}
    ]
    assert len((out / "samples" / "echo.jsonl").read_text().splitlines()) == 6
    report = check_data([str(tiny_suite)], CheckOptions(tokenizer=False))
    [finding] = [f for f in report.findings if f.code == "repeated_line"]
    assert finding.severity == "warning" and finding.where.endswith("eval.jsonl:7")
    assert warned[0] == f"warning: {finding.message} - {finding.where} - {finding.fix}"
    assert "duplicate" not in codes(report) and "duplicate_id" not in codes(report)  # no id the user never wrote
    assert report.files[0].records == 6 and report.files[0].dropped == 1 and report.exit_code == 0
    assert "6 records, 1 repeated line dropped]" in report_text(report)


def test_label_balance_and_unseen_labels(tmp_path: Path) -> None:
    train = [chat(text(i), "ok", label="common") for i in range(100)] + [
        chat(text(200 + i), "ok", label="rare") for i in range(3)
    ]
    evaluation = [
        {"prompt": text(10_000 + i), "completion": "ok", "label": ["a", "b", "new"][i % 3]} for i in range(30)
    ]
    report = check(write(tmp_path / "train.jsonl", train), write(tmp_path / "eval.jsonl", evaluation))
    by_code = {f.code: f for f in report.findings}
    assert "'rare' has 3 items, 'common' 100" in by_code["label_imbalance"].message
    assert "'rare' (3)" in by_code["rare_label"].message
    assert "'a' (10)" in by_code["unseen_label"].message and by_code["unseen_label"].file.endswith("eval.jsonl")
    # classification-like outputs without labels count too; free-text outputs do not
    outputs = [{"input": text(i), "output": "yes" if i < 95 else "no"} for i in range(100)]
    assert codes(check(write(tmp_path / "data.jsonl", outputs)))["label_imbalance"] == 1
    free = [{"input": text(i), "output": text(500 + i)} for i in range(100)]
    assert "label_imbalance" not in codes(check(write(tmp_path / "data.jsonl", free)))


def test_lengths_and_context(tmp_path: Path) -> None:
    evaluation = clean_eval()
    evaluation[10]["prompt"] = text(1, 3000)  # ~15k characters: an outlier, and over 1000 tokens
    evaluation[11]["prompt"] = "?"
    report = check(write(tmp_path / "eval.jsonl", evaluation), max_len=1000)
    assert lines_of(report, "length_outlier") == [11] and lines_of(report, "near_empty") == [12]
    too_long = next(f for f in report.findings if f.code == "too_long")
    assert too_long.severity == "warning" and "~" in too_long.message  # an estimate never fails a check
    assert "(--max-len 1000)" in too_long.message


def test_token_counts_with_a_tokenizer_make_eval_overflow_an_error(tmp_path: Path) -> None:
    tokenizers = pytest.importorskip("tokenizers")
    model = tmp_path / "model"
    model.mkdir()
    vocab = {"[UNK]": 0, **{word: i + 1 for i, word in enumerate(VOCAB)}}
    tokenizer = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tokenizer.save(str(model / "tokenizer.json"))
    evaluation = clean_eval()
    evaluation[5]["prompt"] = text(1, 1200)  # 1200 words: 1200 tokens, though ~1500 by characters/4
    report = check_data([str(write(tmp_path / "eval.jsonl", evaluation))], CheckOptions(max_len=1100, model=str(model)))
    assert report.tokens == f"counted with the tokenizer of {model}"
    [too_long] = [f for f in report.findings if f.code == "too_long"]
    assert too_long.severity == "error" and "prompt of 1200 tokens" in too_long.message and report.exit_code == 1


def test_size_guidance(tmp_path: Path) -> None:
    for n, expected in (
        (30, {"too_few_for_lora"}),
        (70, {"few_for_lora", "small_for_full_finetune"}),
        (150, {"small_for_full_finetune"}),
        (500, set()),
    ):
        found = codes(check(write(tmp_path / "train.jsonl", clean_train(n))))
        assert set(found) & {"too_few_for_lora", "few_for_lora", "small_for_full_finetune"} == expected, n
    assert codes(check(write(tmp_path / "train.jsonl", clean_train(30))), "warning")["too_few_for_lora"] == 1


def test_json_report_shape_and_out_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train = write(tmp_path / "train.jsonl", clean_train() + [chat(text(3), "answer 0", label="class0")])
    out = tmp_path / "reports" / "check.json"
    code = main(["check-data", str(train), "--json", "--out", str(out), "--estimate-tokens"])
    printed = capsys.readouterr().out
    assert code == 0 and json.loads(printed) == json.loads(out.read_text())
    report = json.loads(printed)
    assert set(report) == {"schema_version", "ok", "counts", "files", "tokens", "limits", "findings", "omitted"}
    assert report["ok"] is True and report["counts"] == {"error": 0, "warning": 1, "info": 1}
    assert report["files"] == [
        {"path": str(train), "role": "train", "records": 120, "lines": 121, "layouts": {"chat": 121}, "dropped": 1}
    ]  # line 121 repeats line 4 exactly: left out, as harness run leaves it out
    assert [f["code"] for f in report["findings"]] == ["repeated_line", "small_for_full_finetune"]
    assert report["omitted"] == []
    assert set(report["findings"][0]) == {"severity", "code", "message", "where", "fix", "file"}
    assert report["limits"]["eval_tokens"] == 2048


def test_demo_suite_has_no_errors(capsys: pytest.CaptureFixture[str]) -> None:
    started = time.perf_counter()
    code = main(["check-data", str(DEMO)])
    output = capsys.readouterr().out
    with capsys.disabled():
        print(f"\n{output}(demo check: {time.perf_counter() - started:.2f} s)")
    assert code == 0 and "0 errors, 0 warnings" in output
    assert "eval, fields layout: 150 records" in output and "train, fields layout: 360 records" in output


def test_suite_folder_reports_everything_load_suite_would_refuse(tiny_suite: Path) -> None:
    with (tiny_suite / "train.jsonl").open("a") as handle:
        handle.write('{"id": "t1", "country": "Chile", "output": "Santiago"}\n')  # line 3: duplicate id
        handle.write('{"id": "t3", "land": "Chile", "output": "Santiago"}\n')  # no template field
        handle.write('{"id": "t4", "country": "Chile"}\n')  # no output
        handle.write('{"id": "t5", "country": "France", "output": "{\\"capital\\": \\"Paris\\"}"}\n')  # eval copy
    with pytest.raises(DataError):
        load_suite(tiny_suite)
    report = check_data([str(tiny_suite)], CheckOptions(tokenizer=False))
    assert {(f.code, f.where.rpartition(":")[2]) for f in report.findings if f.severity == "error"} == {
        ("duplicate_id", "3"),
        ("missing_template_field", "4"),
        ("invalid_record", "5"),
        ("leakage", "1"),
    }
    assert report.limits.eval_tokens == 2048 - 32 and report.limits.train_tokens == 512


def test_bad_arguments_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write(tmp_path / "train.jsonl", clean_train(5))
    for args in (
        [str(tmp_path / "missing.jsonl")],
        [str(tmp_path)],
        [],
        [str(data), "--max-len", "0"],
        [str(DEMO), str(data)],
        [str(data), "--similarity", "1.5"],
    ):
        assert main(["check-data", *args]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_hostile_files_give_a_report_never_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    huge = tmp_path / "huge.jsonl"
    with huge.open("wb") as handle:  # one 50 MB line, then a normal one
        handle.write(b'{"prompt": "' + b"lorem ipsum dolor " * (50 * 2**20 // 18) + b'", "completion": "ok"}\n')
        handle.write(b'{"prompt": "hello there", "completion": "ok"}\n')
    files = {
        "huge": (huge, "too_long"),
        "binary": (write(tmp_path / "binary.jsonl", [bytes(range(256)) * 100]), "binary_file"),
        "noise": (
            write(tmp_path / "noise.jsonl", [random.Random(0).randbytes(50_000).replace(b"\0", b"x")]),
            "invalid_utf8",
        ),
        "empty": (write(tmp_path / "empty.jsonl", []), "empty_file"),
        "nested": (
            write(tmp_path / "nested.jsonl", [b"[" * 100_000 + b"\n", b'{"a": 1' + b"1" * 5000 + b"}\n"]),
            "malformed_json",
        ),
    }
    for name, (path, code) in files.items():
        exit_code = main(["check-data", str(path), "--estimate-tokens"])
        captured = capsys.readouterr()
        assert exit_code in (0, 1) and "Traceback" not in captured.out + captured.err, name
        assert f"[{code}]" in captured.out, (name, captured.out[-2000:])


def test_lines_over_the_limit_are_reported_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.datacheck import reading

    monkeypatch.setattr(reading, "MAX_LINE_BYTES", 1000)
    path = write(
        tmp_path / "eval.jsonl", [{"prompt": "x" * 5000, "completion": "y"}, {"prompt": "fine", "completion": "y"}]
    )
    report = check(path)
    assert lines_of(report, "line_too_long") == [1] and report.files[0].records == 1


def test_fast_checks_on_a_loaded_suite(tiny_suite: Path) -> None:
    with (tiny_suite / "eval.jsonl").open("a") as handle:
        handle.write('{"id": "fr2", "country": "FRANCE!", "output": "{\\"capital\\": \\"Lyon\\"}"}\n')
        handle.write('{"id": "no", "country": "Norway", "output": "{\\"capital\\": \\"Oslo\\"}"}\n')
        # (an empty JSON reference is refused by load_suite itself: tests/test_hardening.py)
        handle.write('{"id": "blank", "country": " ", "output": "{\\"capital\\": \\"-\\"}"}\n')
    suite = load_suite(tiny_suite)
    found = {(f.code, f.severity, f.where.rpartition(":")[2]) for f in fast_checks(suite)}
    assert {
        ("contradiction", "error", "1"),
        ("empty_field", "error", "9"),
        ("leakage", "error", "8"),
        ("too_few_for_lora", "warning", ""),
    } <= {(c, s, w if w.isdigit() else "") for c, s, w in found}
    demo = fast_checks(load_suite(DEMO))
    assert [f.severity for f in demo if f.severity != "info"] == []


def test_fast_checks_scale_linearly_not_quadratically(tmp_path: Path) -> None:
    """Run before every `harness run`, so they must stay linear in the data. A wall-clock limit flakes on
    a loaded machine; the ratio of two sizes measured side by side does not (linear: 4x for 4x the
    items, a pairwise comparison: 16x). The absolute speed is bench/ material."""

    def items(prefix: str, n: int) -> tuple[Item, ...]:
        return tuple(
            Item(
                f"{prefix}{i}",
                {"input": f"{prefix} {text(i, 30)}"},
                f"answer {i % 5}",
                source=f"{prefix}.jsonl:{i + 1}",
            )
            for i in range(n)
        )

    config = SuiteConfig(
        "big", DataConfig(eval="eval.jsonl", train="train.jsonl"), generation=GenerationParams(max_tokens=16)
    )

    def seconds(n: int) -> float:
        suite = Suite(tmp_path, config, items("eval", n), items("train", n), {}, None)
        best = float("inf")
        for _ in range(2):
            started = time.perf_counter()
            findings = fast_checks(suite)
            best = min(best, time.perf_counter() - started)
        assert not [f for f in findings if f.severity == "error"]
        return best

    small, large = seconds(2_000), seconds(8_000)
    assert large / small < 9, (small, large)


def test_demo_copy_with_a_leaked_item_fails(tmp_path: Path) -> None:
    suite = tmp_path / "demo"
    shutil.copytree(DEMO, suite, ignore=shutil.ignore_patterns("adapters", "fake"))
    first_eval = (suite / "data" / "eval.jsonl").read_text().splitlines()[0]
    leaked = json.loads(first_eval) | {"id": "train-leak"}
    with (suite / "data" / "train.jsonl").open("a") as handle:
        handle.write(json.dumps(leaked) + "\n")
    report = check_data([str(suite)], CheckOptions(tokenizer=False))
    assert [(f.code, f.where.rpartition(":")[2]) for f in report.findings if f.severity == "error"] == [
        ("leakage", "1")
    ]


def test_suite_lines_over_the_loaders_limit_are_errors(tiny_suite: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.suite import items

    monkeypatch.setattr(items, "MAX_LINE_BYTES", 200, raising=False)  # what load_items refuses, smaller here
    with (tiny_suite / "eval.jsonl").open("a") as handle:
        handle.write(json.dumps({"id": "long", "country": "x" * 300, "output": "y"}) + "\n")
    report = check_data([str(tiny_suite)], CheckOptions(tokenizer=False))
    assert lines_of(report, "line_too_long") == [7] and report.exit_code == 1


def test_harness_run_refuses_leaked_data_before_generating(
    tiny_suite: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`harness run` runs the fast checks first: an eval item copied into the train split stops the run."""
    eval_line = (tiny_suite / "eval.jsonl").read_text().splitlines()[0]
    with (tiny_suite / "train.jsonl").open("a") as handle:
        handle.write(eval_line + "\n")
    out = tmp_path / "run"
    assert main(["run", str(tiny_suite), "--variants", "echo", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("error: ")
        and "leak" in err
        and "harness check-data" in err
        and len(err.strip().splitlines()) == 1
    )
    assert not out.exists()


def test_near_leakage_fires_from_cosine_0_9(tmp_path: Path) -> None:
    """The default threshold is 0.9: a 40-word eval input with one word replaced shares all but 3 of its
    79 word 1-2 grams with a train input (cosine about 76/79 = 0.96 unweighted, 0.95 after TF-IDF) and is
    leakage; with three words replaced (70/79 = 0.89 unweighted, 0.86 weighted) it is not."""
    words = text(70, 40).split()

    def replaced(count: int) -> str:
        changed = list(words)
        for j in range(count):
            changed[4 * j + 1] = f"zzz{j}"
        return " ".join(changed)

    train = clean_train() + [chat(" ".join(words), "x", label="class0")]
    for count, leaks in ((1, True), (3, False)):
        evaluation = clean_eval() + [{"prompt": replaced(count), "completion": "x"}]
        report = check(write(tmp_path / "train.jsonl", train), write(tmp_path / "eval.jsonl", evaluation))
        found = [f for f in report.findings if f.code == "near_leakage"]
        assert bool(found) is leaks, (count, found)
        if leaks:
            assert "cosine 0.95" in found[0].message and found[0].where.endswith("eval.jsonl:61")
