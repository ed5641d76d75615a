"""Hostile and broken input. Every case ends as one line `error: what - where - how to fix` (exit code 2)
naming the file, line or key, or as a run that does what it should; never a traceback, never a changed
input file, never a result folder for a run that failed, never anything in a config executed.
Fake and echo variants only: the whole file runs in seconds."""

from __future__ import annotations

import json
import os
import time
import tracemalloc
import warnings
from pathlib import Path

import pytest

from harness.cli import main
from harness.core.errors import ConfigError, DataError, HarnessWarning
from harness.core.redact import REDACTED, redact_secrets
from harness.variants import load_suite

MB = 1_000_000
BIG = 50 * MB


# --- helpers ---------------------------------------------------------------------------------------


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["run", *args, "--quiet"])
    return code, capsys.readouterr().err


def assert_one_line_error(code: int, err: str, *needles: str) -> str:
    """Exit code 2, no traceback, exactly one `error:` line (warnings may precede it) holding `needles`."""
    assert code == 2, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and all(line.startswith(("error: ", "warning: ")) for line in lines), err
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def assert_error_line(err: str, *needles: str) -> str:
    """After failing_run (which checked the exit code): one error line holding `needles`."""
    return assert_one_line_error(2, err, *needles)


def snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every file's bytes and every symlink's target under `folder`, without following links."""
    found: dict[str, bytes | str] = {}
    for top, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(top, name)
            relative = str(path.relative_to(folder))
            if path.is_symlink():
                found[relative] = "-> " + os.readlink(path)
            elif path.is_file():
                found[relative] = path.read_bytes()
    return found


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "results" / "run"


@pytest.fixture
def suite(tiny_suite: Path) -> Path:
    return tiny_suite


def assert_nothing_written(out: Path) -> None:
    assert not out.exists(), sorted(str(p) for p in out.rglob("*"))
    assert not out.parent.exists() or not any(out.parent.iterdir())


def assert_no_results(out: Path) -> None:
    """Nothing written: no run folder at all (a failed start leaves no resume folder behind)."""
    assert not out.exists()


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)


def failing_run(capsys, suite: Path, out: Path, *args: str) -> str:
    """Run the CLI expecting a one-line error; the suite folder must be byte-for-byte unchanged."""
    before = snapshot(suite)
    code, err = run_cli(capsys, str(suite), "--out", str(out), *args)
    assert snapshot(suite) == before
    assert code == 2, err
    return err


RAG_OVER_CANNED = '\n[variants.rag]\nkind = "rag"\ninner = "canned"\nretriever = "bm25"\n'


# --- 1. invalid UTF-8 ------------------------------------------------------------------------------


def test_invalid_utf8_in_suite_toml(suite: Path, out: Path, capsys) -> None:
    with (suite / "suite.toml").open("ab") as handle:
        handle.write(b"\n# caf\xe9\n")
    err = failing_run(capsys, suite, out)
    assert_error_line(err, "suite.toml is not valid UTF-8", "byte ")
    assert_nothing_written(out)


@pytest.mark.parametrize("data", ["eval.jsonl", "train.jsonl"])
def test_invalid_utf8_in_data(suite: Path, out: Path, capsys, data: str) -> None:
    with (suite / data).open("ab") as handle:
        handle.write(b'{"id": "x", "country": "Cura\xe7ao", "output": "{}"}\n')
    lines = (suite / data).read_bytes().count(b"\n")
    err = failing_run(capsys, suite, out)
    assert_error_line(err, "invalid UTF-8", f"{data}:{lines}", "save the file as UTF-8")
    assert_nothing_written(out)


def test_invalid_utf8_in_run_config(suite: Path, out: Path, tmp_path: Path, capsys) -> None:
    config = tmp_path / "run.toml"
    config.write_bytes(b'[variants.echo]\nkind = "echo"\n# \xff\xfe\n')
    err = failing_run(capsys, suite, out, "--config", str(config))
    assert_error_line(err, "run.toml is not valid UTF-8", "byte 32")
    assert_nothing_written(out)


def test_invalid_utf8_in_fake_outputs(suite: Path, out: Path, capsys) -> None:
    with (suite / "canned.jsonl").open("ab") as handle:
        handle.write(b'{"id": "es", "output": "Espa\xf1a"}\n')
    err = failing_run(capsys, suite, out)
    assert_error_line(err, "invalid UTF-8", "canned.jsonl byte")
    assert_no_results(out)


def test_invalid_utf8_in_knowledge_document(suite: Path, out: Path, capsys) -> None:
    append(suite / "suite.toml", RAG_OVER_CANNED)
    (suite / "knowledge").mkdir()
    (suite / "knowledge" / "france.md").write_bytes(b"# France\nParis is the capital. Caf\xe9.\n")
    err = failing_run(capsys, suite, out, "--variants", "rag")
    assert_error_line(err, "invalid UTF-8", "france.md byte 34")
    assert_no_results(out)


def test_invalid_utf8_in_json_schema_file(suite: Path, out: Path, capsys) -> None:
    (suite / "schema.json").write_bytes(b'{"type": "object", "description": "caf\xe9"}')
    edit(suite / "suite.toml", "schema = {", 'schema = "schema.json"\n# {')
    err = failing_run(capsys, suite, out)
    assert_error_line(err, "invalid UTF-8", "schema.json byte 38", "[output] schema")
    assert_nothing_written(out)


# --- 2. a 50 MB line ---------------------------------------------------------------------------------


def load_bounded(path: Path, seconds: float = 5.0, peak_mb: float = 40.0) -> Exception:
    """load_suite on `path` must fail fast with a HarnessError, holding at most `peak_mb` MB on the way."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises((ConfigError, DataError)) as caught:
            load_suite(path)
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert time.perf_counter() - started < seconds
    assert peak < peak_mb * MB, f"peak {peak / MB:.0f} MB"
    return caught.value


@pytest.mark.parametrize("valid_json", [True, False], ids=["record", "not-json"])
def test_50mb_line_in_eval_data(suite: Path, out: Path, capsys, valid_json: bool) -> None:
    body = "x" * BIG
    line = json.dumps({"id": "big", "country": body, "output": "{}"}) if valid_json else '{"id": "big", ' + body
    append(suite / "eval.jsonl", line + "\n")
    error = load_bounded(suite)
    assert "10 MB limit" in str(error) and "eval.jsonl:7" in str(error)
    err = failing_run(capsys, suite, out)
    assert_error_line(err, "line longer than the 10 MB limit", "eval.jsonl:7")
    assert len(err) < 1000  # the line itself is never echoed
    assert_nothing_written(out)


def test_long_record_under_the_limit_loads(suite: Path) -> None:
    append(
        suite / "eval.jsonl", json.dumps({"id": "long", "country": "x" * (2 * MB), "output": '{"capital": "x"}'}) + "\n"
    )
    loaded = load_suite(suite)
    assert len(loaded.eval_items[-1].fields["country"]) == 2 * MB


def test_50mb_string_in_suite_toml(suite: Path, out: Path, capsys) -> None:
    edit(suite / "suite.toml", 'description = "Capitals as JSON"', 'description = "' + "x" * BIG + '"')
    error = load_bounded(suite)
    assert "over the 1 MB limit" in str(error)
    err = failing_run(capsys, suite, out)
    assert_error_line(err, "suite.toml is 50.0 MB, over the 1 MB limit for a config file")
    assert_nothing_written(out)


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("[" * 100_000, "nested too deeply"),
        (
            '{"id": "n", "country": "X", "output": ' + "9" * 5000 + "}",
            "malformed JSON (Exceeds the limit (4300 digits)",
        ),
        # inf: read as the text "Infinity", which is no JSON answer in this extract = "json" suite
        ('{"id": "n", "country": "X", "output": 1e999999}', "the reference 'Infinity' is not a non-empty JSON object"),
    ],
    ids=["deep", "huge-int", "huge-float"],
)
def test_pathological_json_in_eval_data(suite: Path, out: Path, capsys, line: str, needle: str) -> None:
    append(suite / "eval.jsonl", line + "\n")
    err = failing_run(capsys, suite, out)
    assert_error_line(err, needle, "eval.jsonl:7")
    assert_nothing_written(out)


@pytest.mark.parametrize(
    ("value", "needle"),
    [("[" * 100_000 + "]" * 100_000, "nested too deeply"), ("9" * 5000, "value out of range")],
    ids=["deep", "huge-int"],
)
def test_pathological_toml_values(suite: Path, out: Path, capsys, value: str, needle: str) -> None:
    edit(suite / "suite.toml", "seed = 7", f"seed = {value}")
    err = failing_run(capsys, suite, out)
    assert_error_line(err, "invalid TOML", "suite.toml", needle)
    assert_nothing_written(out)


def test_pathological_json_schema_file(suite: Path, out: Path, capsys) -> None:
    (suite / "schema.json").write_text("[" * 100_000 + "]" * 100_000)
    edit(suite / "suite.toml", "schema = {", 'schema = "schema.json"\n# {')
    err = failing_run(capsys, suite, out)
    assert_error_line(err, "malformed JSON", "schema.json", "[output] schema")
    assert_nothing_written(out)


# --- 3. paths outside the suite folder ------------------------------------------------------------

# (key as the error names it, how to set it to PATH in suite.toml, extra run arguments)
PATH_KEYS = {
    "[data] eval": (('eval = "eval.jsonl"', "eval = PATH"),),
    "[data] train": (('train = "train.jsonl"', "train = PATH"),),
    "[output] schema": (("schema = {", "schema = PATH\n# {"),),
    "[knowledge] dir": (("[data]", "[knowledge]\ndir = PATH\n\n[data]"),),
    "[variants.tuned] adapter": (
        ("[variants.echo]", '[variants.tuned]\nkind = "finetuned"\nadapter = PATH\n\n[variants.echo]'),
    ),
    "[variants.canned] outputs": (('outputs = "canned.jsonl"', "outputs = PATH"),),
}


def set_path(suite: Path, key: str, value: str) -> None:
    for old, new in PATH_KEYS[key]:
        edit(suite / "suite.toml", old, new.replace("PATH", json.dumps(value)))


@pytest.mark.parametrize("value", ["../../etc/passwd", "/etc/passwd"])
@pytest.mark.parametrize("key", list(PATH_KEYS))
def test_path_outside_suite_folder(suite: Path, out: Path, capsys, key: str, value: str) -> None:
    set_path(suite, key, value)
    err = failing_run(capsys, suite, out)
    assert_error_line(err, f"path {value!r} points outside the suite folder", key)
    assert_nothing_written(out)  # refused when the config is read, before the run starts
    assert "root:" not in err


@pytest.mark.parametrize("key", list(PATH_KEYS))
def test_symlink_out_of_suite_folder(suite: Path, out: Path, tmp_path: Path, capsys, key: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "data.jsonl").write_text((suite / "eval.jsonl").read_text())
    is_dir = key in ("[knowledge] dir", "[variants.tuned] adapter")
    (suite / "link").symlink_to(outside if is_dir else outside / "data.jsonl", target_is_directory=is_dir)
    set_path(suite, key, "link")
    err = failing_run(capsys, suite, out)
    assert_error_line(err, "path 'link' is a symlink to", "outside the suite folder", key)
    assert_nothing_written(out)


def test_symlink_inside_suite_folder_is_fine(suite: Path) -> None:
    (suite / "data").mkdir()
    (suite / "eval.jsonl").rename(suite / "data" / "eval.jsonl")
    (suite / "eval.jsonl").symlink_to(suite / "data" / "eval.jsonl")
    assert len(load_suite(suite).eval_items) == 6


def test_symlink_in_knowledge_folder_pointing_outside(suite: Path, out: Path, tmp_path: Path, capsys) -> None:
    secret = tmp_path / "id_rsa.txt"
    secret.write_text("not for prompts")
    append(suite / "suite.toml", RAG_OVER_CANNED)
    (suite / "knowledge").mkdir()
    (suite / "knowledge" / "capitals.md").write_text("# Capitals\nParis is the capital of France.\n")
    (suite / "knowledge" / "notes.txt").symlink_to(secret)
    err = failing_run(capsys, suite, out, "--variants", "rag")
    assert_error_line(err, "'knowledge/notes.txt' is a symlink to", "[knowledge] dir")
    assert_no_results(out)


def test_symlink_loop_and_nul_in_path(suite: Path, out: Path, capsys) -> None:
    (suite / "loop.jsonl").symlink_to(suite / "loop.jsonl")
    edit(suite / "suite.toml", 'eval = "eval.jsonl"', 'eval = "loop.jsonl"')
    assert_one_line_error(*run_cli(capsys, str(suite), "--out", str(out)), "loop.jsonl", "[data] eval")
    edit(suite / "suite.toml", 'eval = "loop.jsonl"', 'eval = "eval\\u0000.jsonl"')
    assert_one_line_error(*run_cli(capsys, str(suite), "--out", str(out)), "NUL", "[data] eval")
    assert_nothing_written(out)


@pytest.mark.parametrize("value", ["../../etc/passwd", "/etc/passwd"])
def test_path_outside_run_config_folder(suite: Path, out: Path, tmp_path: Path, capsys, value: str) -> None:
    (tmp_path / "configs").mkdir()
    config = tmp_path / "configs" / "run.toml"
    config.write_text(f'[variants.canned]\nkind = "fake"\noutputs = {json.dumps(value)}\n')
    err = failing_run(capsys, suite, out, "--config", str(config))
    assert_error_line(err, "points outside", "run.toml [variants.canned] outputs")
    assert_nothing_written(out)


# --- 4. names with path characters ---------------------------------------------------------------

BAD_NAMES = ["../evil", "a/b", "..", ".hidden", "x\\y", "nul\x00byte", "new\nline", "", "a" * 101]


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_suite_name_with_path_characters(suite: Path, out: Path, capsys, name: str) -> None:
    edit(suite / "suite.toml", 'name = "tiny"', f"name = {json.dumps(name)}")
    err = failing_run(capsys, suite, out)
    assert_error_line(err, "invalid suite name", "suite.toml key 'name'", "letters, digits")
    assert_nothing_written(out)


@pytest.mark.parametrize("name", ["../../x", "a/b", ".hidden", "..", "x\\y", "new\nline"], ids=repr)
def test_variant_name_with_path_characters(suite: Path, out: Path, tmp_path: Path, capsys, name: str) -> None:
    edit(suite / "suite.toml", "[variants.echo]", f"[variants.{json.dumps(name)}]")
    err = failing_run(capsys, suite, out)
    assert_error_line(err, "invalid variant name", "suite.toml [variants.")
    assert_nothing_written(out)
    assert not any(p.name.startswith("x") for p in tmp_path.rglob("*.jsonl"))


@pytest.mark.parametrize("name", ["../../x", "a/b", ".hidden"])
def test_variant_name_with_path_characters_in_run_config(
    suite: Path, out: Path, tmp_path: Path, capsys, name: str
) -> None:
    config = tmp_path / "run.toml"
    config.write_text(f'[variants.{json.dumps(name)}]\nkind = "echo"\n')
    err = failing_run(capsys, suite, out, "--config", str(config))
    assert_error_line(err, "invalid variant name", "run.toml [variants.")
    assert_nothing_written(out)
    assert not (tmp_path / "x.jsonl").exists() and not (tmp_path / "results" / "x.jsonl").exists()


@pytest.mark.parametrize("name", ["../../x", "a/b", ".hidden", "echo/../canned"])
def test_variants_option_with_path_characters(suite: Path, out: Path, capsys, name: str) -> None:
    err = failing_run(capsys, suite, out, "--variants", name)
    assert_error_line(err, f"unknown variant '{name}'")
    assert_nothing_written(out)


def test_variants_option_with_newline(suite: Path, out: Path, capsys) -> None:
    err = failing_run(capsys, suite, out, "--variants", "a\nb")
    assert_error_line(err, "unknown variant")


@pytest.mark.parametrize("target", ["..", "."])
def test_out_naming_a_folder_in_use(suite: Path, tmp_path: Path, capsys, monkeypatch, target: str) -> None:
    monkeypatch.chdir(suite)
    before = snapshot(tmp_path)
    code, err = run_cli(capsys, str(suite), "--out", target)
    assert_one_line_error(code, err, "exists and is not an empty folder")
    assert snapshot(tmp_path) == before


# --- 5. code injection -----------------------------------------------------------------------------

CANARY = "PWNED"


@pytest.mark.parametrize(
    "placeholder",
    ["{input.__class__.__mro__}", "{input[0]}", "{0}", "{input!r}", "{input:>10}", "{}", "{ country }", "{country"],
)
def test_template_placeholders_that_would_run_code_are_refused(
    suite: Path, out: Path, capsys, placeholder: str
) -> None:
    edit(
        suite / "suite.toml", 'template = "What is the capital of {country}?"', f"template = {json.dumps(placeholder)}"
    )
    err = failing_run(capsys, suite, out)
    assert_error_line(err, "bad placeholder", "suite.toml [prompt] template")
    assert_nothing_written(out)


def test_rag_template_placeholder_is_refused_before_the_run(suite: Path, out: Path, capsys) -> None:
    append(suite / "suite.toml", RAG_OVER_CANNED + 'template = "{context.__init__.__globals__}"\n')
    err = failing_run(capsys, suite, out, "--variants", "rag")
    assert_error_line(err, "bad placeholder", "[variants.rag] template")
    assert_nothing_written(out)


def test_config_strings_are_never_executed(suite: Path, out: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    payloads = {
        "python": f"__import__('os').system('touch {CANARY}')",
        "shell": f"$(touch {CANARY}) `touch {CANARY}` ${{HOME}} $HOME",
        "jinja": "{{7*7}} {{ config.__class__ }}",
    }
    in_template = payloads["shell"].replace("${HOME}", "$")  # in a template, {HOME} is a field (next test)
    toml = suite / "suite.toml"
    edit(toml, 'description = "Capitals as JSON"', f"description = {json.dumps(payloads['shell'])}")
    edit(toml, 'system = "Answer with JSON."', f"system = {json.dumps(payloads['python'] + ' ' + payloads['shell'])}")
    edit(
        toml,
        'template = "What is the capital of {country}?"',
        f"template = {json.dumps(payloads['jinja'] + ' ' + in_template + ' {country}?')}",
    )
    edit(toml, "[run]", f"[engine]\nmodel = {json.dumps(payloads['shell'])}\n\n[run]")
    edit(toml, 'extract = "json"', f'extract = "json"\npattern = {json.dumps(payloads["python"])}')
    edit(toml, 'default = "I do not know."', f"default = {json.dumps(payloads['shell'])}")
    # a data value that looks like a placeholder is rendered as it is, never substituted again
    edit(suite / "eval.jsonl", '"country": "France"', '"country": "{country.__class__} {{x}} $(touch PWNED)"')
    code, err = run_cli(capsys, str(suite), "--out", str(out))
    assert code == 0, err
    samples = [json.loads(line) for line in (out / "samples" / "echo.jsonl").read_text().splitlines()]
    fr = next(s for s in samples if s["id"] == "fr")
    assert fr["messages"][0] == {"role": "system", "content": payloads["python"] + " " + payloads["shell"]}
    assert (
        fr["output"] == f"{{7*7}} {{ config.__class__ }} {in_template} {{country.__class__}} {{{{x}}}} $(touch PWNED)?"
    )
    canned = {
        s["id"]: s["output"] for s in map(json.loads, (out / "samples" / "canned.jsonl").read_text().splitlines())
    }
    assert canned["at"] == payloads["shell"]  # "at" has no canned output: the default
    assert not list(tmp_path.rglob(CANARY)) and not Path(CANARY).exists()


def test_environment_variables_in_a_template_are_fields_not_expanded(
    suite: Path, out: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("HOME", "/root")
    edit(suite / "suite.toml", "{country}?", "{country}? ${HOME}")
    err = failing_run(capsys, suite, out)
    assert_error_line(err, "item 'fr' has no field 'HOME' needed by the prompt template", "eval.jsonl:1")
    assert_nothing_written(out)


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ('"exact_match",', "\"__import__('os').system('touch PWNED')\",", "unknown metric"),
        ('kind = "echo"', 'kind = "os:system"', "unknown variant kind 'os:system'"),
        ('kind = "echo"', 'kind = "harness.variants.fake:FakeVariant"', "unknown variant kind"),
        ('kind = "echo"', "kind = \"__import__('os')\"", "unknown variant kind"),
        ("[prompt]", '[prompt]\nexec = "touch PWNED"', "unknown key 'exec'"),
        ('name = "tiny"', 'name = "tiny"\nhooks = ["touch PWNED"]', "unknown key 'hooks'"),
        ('kind = "echo"', 'kind = "echo"\ncommand = "touch PWNED"', "unknown key 'command'"),
        ("[run]", '[run]\nbefore = "touch PWNED"', "unknown key 'before'"),
    ],
)
def test_code_in_names_and_unknown_keys_is_refused(
    suite: Path, out: Path, tmp_path: Path, capsys, monkeypatch, old: str, new: str, needle: str
) -> None:
    monkeypatch.chdir(tmp_path)
    edit(suite / "suite.toml", old, new)
    err = failing_run(capsys, suite, out)
    assert_error_line(err, needle)
    assert_nothing_written(out)
    assert not list(tmp_path.rglob(CANARY))


FIELD_METRICS = '{ name = "accuracy", field = "capital" }, { name = "macro_f1", field = "capital" }, '


def test_catastrophic_regex_warns(suite: Path, out: Path, capsys) -> None:
    edit(suite / "suite.toml", FIELD_METRICS, "")  # they need extract = "json"
    edit(suite / "suite.toml", 'extract = "json"', 'extract = "regex"\npattern = \'"capital": "((\\w+\\s?)*)"\'')
    edit(suite / "suite.toml", 'format = "json"', 'format = "json"\npattern = "(a+)+$"')
    with pytest.warns(HarnessWarning) as caught:
        load_suite(suite)
    messages = [str(w.message) for w in caught]
    assert any("[answer] pattern" in m and "catastrophic backtracking" in m for m in messages), messages
    assert any("[output] pattern '(a+)+$'" in m for m in messages), messages
    code, err = run_cli(capsys, str(suite), "--out", str(out), "--variants", "canned")
    assert code == 0, err  # a warning, not an error: the heuristic also flags some safe patterns
    assert sum(line.startswith("warning: ") and "backtracking" in line for line in err.splitlines()) == 2


def test_safe_regex_does_not_warn(suite: Path) -> None:
    edit(suite / "suite.toml", FIELD_METRICS, "")
    edit(suite / "suite.toml", 'extract = "json"', 'extract = "regex"\npattern = \'"capital": "(\\w+)"\'')
    with warnings.catch_warnings():
        warnings.simplefilter("error", HarnessWarning)
        load_suite(suite)


# --- 6. API keys ---------------------------------------------------------------------------------

SECRETS = {
    "openai": "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7cDe0fGh3iJk6lMn9oPq2r",
    "anthropic": "sk-ant-api03-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBa-_Q1w2E3r4T5y6U7i8O9p0",
    "huggingface": "hf_AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh",
    "aws": "AKIAIOSFODNN7EXAMPLE",
    "github": "ghp_Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2Yz3",
    "slack": "xoxb-123456789012-123456789012-AbCdEfGhIjKlMnOpQrStUvWx",
}


def test_secrets_in_config_and_data_never_reach_results(suite: Path, out: Path, tmp_path: Path, capsys) -> None:
    toml = suite / "suite.toml"
    edit(toml, 'description = "Capitals as JSON"', f'description = "staging key {SECRETS["openai"]}"')
    edit(toml, 'system = "Answer with JSON."', f'system = "Answer with JSON. Auth: Bearer {SECRETS["anthropic"]}"')
    edit(toml, "{country}?", f"{{country}}? {SECRETS['aws']}")
    append(toml, f'\n[variants.prompted]\nkind = "prompted"\nfew_shot = 1\nsystem = "token {SECRETS["huggingface"]}"\n')
    edit(toml, 'default = "I do not know."', f'default = "{SECRETS["github"]}"')
    edit(suite / "eval.jsonl", '"country": "France"', f'"country": "France {SECRETS["slack"]}"')
    code, err = run_cli(capsys, str(suite), "--out", str(out), "--variants", "echo,canned")
    assert code == 0, err
    written = {path: path.read_text(encoding="utf-8") for path in out.rglob("*") if path.is_file()}
    assert {p.name for p in written} >= {"run.json", "summary.md", "echo.jsonl", "canned.jsonl"}
    for path, text in written.items():
        for provider, secret in SECRETS.items():
            assert secret not in text, f"{provider} key in {path}"
    assert REDACTED in written[out / "run.json"] and REDACTED in written[out / "samples" / "echo.jsonl"]
    warned = [line for line in err.splitlines() if "looks like it contains an API key" in line]
    assert len(warned) == 5 and all(line.startswith("warning: ") for line in warned), err
    keys = (
        "description",
        "[prompt] system",
        "[prompt] template",
        "[variants.prompted] system",
        "[variants.canned] default",
    )
    for key in (f"suite.toml {key}" for key in keys):
        assert any(key in line for line in warned), key
    assert not any(secret in err for secret in SECRETS.values())


def test_secrets_in_run_config_warn_and_are_redacted(suite: Path, out: Path, tmp_path: Path, capsys) -> None:
    config = tmp_path / "run.toml"
    config.write_text(f'[variants.canned]\nkind = "fake"\ndefault = "{SECRETS["huggingface"]}"\n')
    code, err = run_cli(capsys, str(suite), "--out", str(out), "--config", str(config))
    assert code == 0, err
    assert "warning: " in err and "run.toml [variants.canned] default looks like it contains an API key" in err
    for path in out.rglob("*"):
        if path.is_file():
            assert SECRETS["huggingface"] not in path.read_text(encoding="utf-8"), path


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ('name = "tiny"', f'name = "tiny"\napi_key = "{SECRETS["openai"]}"', "unknown key 'api_key'"),
        ('kind = "echo"', f'kind = "echo"\nOPENAI_API_KEY = "{SECRETS["openai"]}"', "unknown key 'OPENAI_API_KEY'"),
        ("max_tokens = 32", f'max_tokens = "{SECRETS["openai"]}"', "expected an integer"),
        ('extract = "json"', f'extract = "{SECRETS["aws"]}"', "invalid value"),
    ],
)
def test_errors_never_echo_a_secret(suite: Path, out: Path, capsys, old: str, new: str, needle: str) -> None:
    edit(suite / "suite.toml", old, new)
    err = failing_run(capsys, suite, out)
    assert_error_line(err, needle)
    assert SECRETS["openai"] not in err and SECRETS["aws"] not in err
    assert_nothing_written(out)


def test_variant_named_like_a_key_is_refused_without_echo(suite: Path, out: Path, capsys) -> None:
    edit(suite / "suite.toml", "[variants.echo]", f"[variants.{SECRETS['openai']}]")
    err = failing_run(capsys, suite, out)
    assert_error_line(err, "a variant name looks like an API key", "suite.toml")
    assert SECRETS["openai"] not in err


@pytest.mark.parametrize("provider", list(SECRETS))
def test_redact_secrets_finds_each_provider(provider: str) -> None:
    secret = SECRETS[provider]
    assert redact_secrets(f"key={secret}.") == f"key={REDACTED}."
    assert redact_secrets({"a": [secret, (1, secret)], secret: 2.5}) == {"a": [REDACTED, (1, REDACTED)], REDACTED: 2.5}


def test_redact_secrets_more_shapes_and_few_false_positives() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOjEyM30.c2ln"
    assert redact_secrets(f"Authorization: Bearer {jwt}") == f"Authorization: Bearer {REDACTED}"
    assert redact_secrets("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz") == REDACTED
    assert redact_secrets("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIB\n-----END RSA PRIVATE KEY-----") == REDACTED
    ordinary = [
        "task-management-system-overview-2024",
        "scikit-learn sk-learn-compatible-estimators-v2",
        "hf_engine_settings_for_the_default_model",
        "use a Bearer token in the Authorization header",
        "sha256:" + "ab" * 32,
        "The AKIA prefix marks AWS keys",
        "risk-assessment-2023-edition",
        "gho_short",
        "Answer with JSON.",
        '{"capital": "Paris"}',
    ]
    for text in ordinary:
        assert redact_secrets(text) == text
    assert redact_secrets([1, None, True, 2.5]) == [1, None, True, 2.5]


def test_build_time_error_leaves_no_progress_folder(suite: Path, out: Path, capsys) -> None:
    with (suite / "canned.jsonl").open("ab") as handle:
        handle.write(b"\xff\n")
    failing_run(capsys, suite, out)
    assert_nothing_written(out)


@pytest.mark.parametrize("line", ["[" * 100_000 + "]" * 100_000, '{"id": "a", "output": ' + "9" * 5000 + "}"])
def test_deep_nesting_or_huge_integer_in_outputs_and_knowledge(tmp_path: Path, line: str) -> None:
    """Readers of fake outputs and knowledge .jsonl: a hostile line is a one-line DataError naming file:line."""
    from harness.core.errors import DataError
    from harness.retrieval.knowledge import load_documents
    from harness.variants.fake import read_outputs

    outputs = tmp_path / "outputs.jsonl"
    outputs.write_text('{"id": "ok", "output": "x"}\n' + line + "\n")
    with pytest.raises(DataError) as raised:
        read_outputs(outputs)
    assert f"{outputs}:2" in str(raised.value)
    knowledge = tmp_path / "kb"
    knowledge.mkdir()
    (knowledge / "docs.jsonl").write_text('{"id": "d1", "text": "fine"}\n' + line + "\n")
    with pytest.raises(DataError) as raised:
        load_documents(knowledge)
    assert f"{knowledge / 'docs.jsonl'}:2" in str(raised.value)
