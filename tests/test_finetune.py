"""`harness finetune` on the real stack (TRL + peft on the embedded model), one optimizer step."""

from __future__ import annotations

import json
from pathlib import Path

from harness.cli import main
from harness.engines.adapters import load_adapter


def test_finetune_writes_a_loadable_adapter_with_its_record(tiny_suite: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "adapter"
    code = main(
        ["finetune", str(tiny_suite), "--out", str(out), "--max-steps", "1", "--batch-size", "2", "--rank", "8"]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    # one progress bar, not the trainer's log dicts; the libraries' loading bars went to the log
    assert "finetune:" in captured.err and "{'loss'" not in captured.out + captured.err
    assert "Loading weights" not in captured.err and "Tokenizing train dataset" not in captured.err
    files = {p.name for p in out.iterdir()}
    assert {
        "adapter_config.json",
        "adapter_model.safetensors",
        "training.json",
        "loss_curve.csv",
        "loss_curve.png",
    } <= files
    assert ".trainer" not in files
    record = json.loads((out / "training.json").read_text())
    assert record["train_items"] == 2 and record["config"]["rank"] == 8 and record["final_loss"] > 0
    assert record["train_data_sha256"]["train.jsonl"]
    assert (out / "loss_curve.csv").read_text().splitlines()[0] == "step,loss"
    adapter = load_adapter("ft", out, "embedded:smollm2-135m-instruct", "test")
    assert adapter.rank == 8 and adapter.base_model == "embedded:smollm2-135m-instruct"

    from safetensors import safe_open

    with safe_open(str(out / "adapter_model.safetensors"), "pt") as weights:
        assert all(str(weights.get_tensor(k).dtype) == "torch.bfloat16" for k in weights.keys())


def test_finetune_without_train_split_is_a_one_line_error(tiny_suite: Path, capsys) -> None:
    toml = tiny_suite / "suite.toml"
    toml.write_text(toml.read_text().replace('train = "train.jsonl"\n', ""))
    assert main(["finetune", str(tiny_suite)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the suite has no train split") and len(err.strip().splitlines()) == 1
