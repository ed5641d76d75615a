"""Bad model and adapter paths are one-line errors, found before any engine starts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.cli import main

ADAPTER = Path(__file__).resolve().parents[1] / "suites" / "support-triage" / "adapters" / "smollm2-135m-instruct-lora"


@pytest.fixture
def suite_with_adapter(tiny_suite: Path) -> Path:
    shutil.copytree(ADAPTER, tiny_suite / "adapter")
    with (tiny_suite / "suite.toml").open("a") as handle:
        handle.write('\n[variants.ft]\nkind = "finetuned"\nadapter = "adapter"\n')
    return tiny_suite


def run_error(capsys, *args: str) -> str:
    code = main(["run", *args, "--quiet"])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_missing_model_path(tiny_suite: Path, tmp_path: Path, capsys) -> None:
    (tiny_suite / "suite.toml").write_text((tiny_suite / "suite.toml").read_text() + '\n[variants.b]\nkind = "base"\n')
    line = run_error(
        capsys, str(tiny_suite), "--variants", "b", "--model", str(tmp_path / "nope"), "--out", str(tmp_path / "r")
    )
    assert "does not exist" in line and not (tmp_path / "r").exists()


def test_model_directory_without_config(tiny_suite: Path, tmp_path: Path, capsys) -> None:
    (tiny_suite / "suite.toml").write_text((tiny_suite / "suite.toml").read_text() + '\n[variants.b]\nkind = "base"\n')
    (tmp_path / "weights").mkdir()
    line = run_error(
        capsys, str(tiny_suite), "--variants", "b", "--model", str(tmp_path / "weights"), "--out", str(tmp_path / "r")
    )
    assert "has no config.json" in line


def test_missing_adapter_directory(suite_with_adapter: Path, tmp_path: Path, capsys) -> None:
    shutil.rmtree(suite_with_adapter / "adapter")
    line = run_error(capsys, str(suite_with_adapter), "--variants", "ft", "--out", str(tmp_path / "r"))
    assert "adapter directory not found" in line and "[variants.ft]" in line


def test_adapter_path_outside_suite(suite_with_adapter: Path, tmp_path: Path, capsys) -> None:
    toml = suite_with_adapter / "suite.toml"
    toml.write_text(toml.read_text().replace('adapter = "adapter"', 'adapter = "../../adapter"'))
    assert "outside the suite folder" in run_error(capsys, str(suite_with_adapter), "--variants", "ft")


def test_adapter_without_config(suite_with_adapter: Path, tmp_path: Path, capsys) -> None:
    (suite_with_adapter / "adapter" / "adapter_config.json").unlink()
    assert "has no adapter_config.json" in run_error(capsys, str(suite_with_adapter), "--variants", "ft")


def test_corrupt_adapter_config(suite_with_adapter: Path, capsys) -> None:
    (suite_with_adapter / "adapter" / "adapter_config.json").write_text("{not json")
    assert "corrupt" in run_error(capsys, str(suite_with_adapter), "--variants", "ft")


def test_truncated_adapter_weights(suite_with_adapter: Path, capsys) -> None:
    weights = suite_with_adapter / "adapter" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5000])
    assert "corrupt adapter weights" in run_error(capsys, str(suite_with_adapter), "--variants", "ft")


def test_adapter_without_weights(suite_with_adapter: Path, capsys) -> None:
    (suite_with_adapter / "adapter" / "adapter_model.safetensors").unlink()
    assert "has no adapter weights" in run_error(capsys, str(suite_with_adapter), "--variants", "ft")


def test_adapter_for_another_base_model_warns(suite_with_adapter: Path, tmp_path: Path) -> None:
    from harness.engines.adapters import load_adapter

    config = suite_with_adapter / "adapter" / "adapter_config.json"
    data = json.loads(config.read_text())
    data["base_model_name_or_path"] = "meta-llama/Llama-3.2-1B"
    config.write_text(json.dumps(data))
    with pytest.warns(UserWarning, match="trained on 'meta-llama/Llama-3.2-1B'"):
        adapter = load_adapter("ft", suite_with_adapter / "adapter", "embedded:smollm2-135m-instruct", "here")
    assert adapter.rank == 16 and len(adapter.sha256) == 64
