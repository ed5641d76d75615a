"""`harness finetune`: LoRA supervised fine-tuning on a suite's train split, with TRL and peft.

Each train item becomes the exact conversation the `base` and `finetuned` variants send at eval time
(suite system prompt, rendered template) plus the reference as the assistant turn; loss is on the
completion only. The output is a peft adapter directory plus `training.json` (config, data hash, time)
and the loss curve (`loss_curve.csv`, `loss_curve.png`).

`--with-retrieval [VARIANT]` trains on the prompts a rag or hybrid variant sends instead: each train
item's query searches the suite's knowledge base (the variant's index, retriever and top_k; never the eval
items) and the hits go into the prompt through the variant's own templates and code (`render_context`,
`with_context` in harness.variants.rag), so the adapter behind a hybrid has seen context before.

Defaults follow the LoRA guides (r=16, alpha=32) except the learning rate: the guides' 2e-5 is tuned for
7B+ models and barely moves a 135M model in a few epochs; 1e-3 trains the demo adapter in 2 epochs.
"""

from __future__ import annotations

import io
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.config.parse import check_ranges
from harness.core.errors import ConfigError, MissingDependencyError
from harness.core.escaping import echo
from harness.core.files import write_file
from harness.core.hardware import native_bf16_cpu
from harness.core.ranges import ranged
from harness.engines.log import capture, engine_output
from harness.engines.models import resolve_model
from harness.finetune.data import (
    TrainRetrieval,
    TrainRow,
    check_lengths,
    example,
    open_retrieval,
    retrieval_record,
    retrieval_variant,
    template_native,
    token_count,
    train_rows,
    training_dataset,
    training_examples,
)
from harness.suite.load import Suite

__all__ = [
    "FinetuneConfig",
    "TrainRetrieval",
    "TrainRow",
    "check_lengths",
    "default_adapter_dir",
    "finetune",
    "open_retrieval",
    "retrieval_record",
    "retrieval_variant",
    "train_rows",
    "training_examples",
]

DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class FinetuneConfig:
    """LoRA training settings; `harness finetune` flags override them. Ranges: checked by `finetune`."""

    rank: int = ranged(16, 1, 4096, example="16")
    alpha: int = ranged(32, 1, 1 << 20, example="32")
    dropout: float = ranged(0.05, 0, 1, high_open=True, example="0.05")
    epochs: float = ranged(2.0, 0, 10_000, low_open=True, example="2")
    learning_rate: float = ranged(1e-3, 0, 1, low_open=True, example="1e-3")
    batch_size: int = ranged(8, 1, 1 << 20, example="8")
    max_steps: int = ranged(-1, -1)  # > 0 overrides epochs; -1: run the epochs (0 is refused)
    max_length: int = ranged(512, 1, 2**31 - 1, example="512")
    seed: int = ranged(0, 0, 2**32 - 1)  # transformers' set_seed goes through numpy: 32 bits
    target_modules: tuple[str, ...] = DEFAULT_TARGET_MODULES
    limit: int | None = ranged(None, 1, example="100")  # the first N train items


def default_adapter_dir(suite: Suite, model_name: str, with_retrieval: bool = False) -> Path:
    """SUITE/adapters/<model>-lora; `-rag-lora` when trained with context, so neither overwrites the other."""
    slug = model_name.split(":")[-1].split("/")[-1].lower()
    return suite.dir / "adapters" / f"{slug}{'-rag' if with_retrieval else ''}-lora"


def finetune(
    suite: Suite,
    out: Path | None = None,
    config: FinetuneConfig = FinetuneConfig(),
    model: str | None = None,
    verbose: bool = False,
    with_retrieval: bool | str = False,
) -> Path:
    """Train a LoRA adapter on the suite's train split; returns the adapter directory. The libraries'
    logs go to OUT/.trainer/finetune.log (removed with the trainer's folder on success), unless `verbose`.

    `with_retrieval`: True trains on the prompts of the suite's only hybrid variant, a name on that rag or
    hybrid variant's (module docstring); the default OUT is then SUITE/adapters/<model>-rag-lora."""
    check_ranges(config, "harness finetune options")
    if config.max_steps == 0:
        raise ConfigError(
            "max_steps must be -1 (run the epochs) or at least 1, got 0",
            "harness finetune options key 'max_steps'",
            "drop --max-steps, or pass --max-steps 100",
        )
    if not suite.train_items:
        raise ConfigError(
            "the suite has no train split", f"{suite.dir / 'suite.toml'} [data]", "add train = 'train.jsonl'"
        )
    if with_retrieval:
        retrieval_variant(suite, _name(with_retrieval))  # a wrong name is told before anything else
    from importlib.util import find_spec

    missing = next(
        (name for name in ("torch", "datasets", "peft", "transformers", "trl") if find_spec(name) is None), None
    )
    if missing:  # found without importing: their import-time warnings belong in the log below
        raise MissingDependencyError(f"fine-tuning needs {missing}", "", "pip install 'harness[finetune]'")

    rows, retrieved = _train_data(suite, config.limit, with_retrieval)  # before any folder is made
    resolved = resolve_model(model or suite.config.engine.model)
    out = Path(out) if out else default_adapter_dir(suite, resolved.name, bool(with_retrieval))
    (out / ".trainer").mkdir(parents=True, exist_ok=True)
    with capture(out / ".trainer" / "finetune.log", verbose):
        with engine_output():
            import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        echo(f"harness: fine-tuning {resolved.name} on {len(rows)} examples ({device}) -> {out}", err=True)
        trainer, seconds = _train(resolved.path, rows, out, config, device)
        trainer.model.save_pretrained(out)
    _point_adapter_at(out, resolved.name)
    compact_adapter_weights(out)
    losses = [(e["step"], e["loss"]) for e in trainer.state.log_history if "loss" in e]
    record = _training_record(suite, config, resolved.name, seconds, device, len(rows), losses)
    _write_training_record(out, record if retrieved is None else {**record, "retrieval": retrieved}, losses)
    _remove_tree(out / ".trainer")
    (out / "README.md").unlink(missing_ok=True)  # peft's empty model card, naming this machine's cache path
    final = f", final loss {losses[-1][1]:.4f}" if losses else ""
    echo(f"harness: adapter written to {out} ({seconds:.0f} s{final})", err=True)
    return out


def _train_data(
    suite: Suite, limit: int | None, with_retrieval: bool | str
) -> tuple[list[TrainRow], dict[str, Any] | None]:
    """The train rows, and training.json's `retrieval` record when they carry retrieved context. They become
    examples once the tokenizer is loaded: its chat template decides how tools are written (`example`)."""
    if not with_retrieval:
        return train_rows(suite, limit), None
    with open_retrieval(suite, _name(with_retrieval)) as retrieval:
        rows = train_rows(suite, limit, retrieval)
        record = retrieval_record(retrieval, rows)
    recall = "no doc_ids" if record["train_recall_at_k"] is None else f"recall@k {record['train_recall_at_k']:.3f}"
    echo(f"harness: train prompts with {record['variant']}'s context (top {record['top_k']}, {recall})", err=True)
    return rows, record


def _name(with_retrieval: bool | str) -> str | None:
    return None if with_retrieval is True else str(with_retrieval)


def _train(model_path: str, rows: list[TrainRow], out: Path, config: FinetuneConfig, device: str) -> tuple[Any, float]:
    """The trained SFTTrainer and its training seconds; one progress bar instead of the trainer's log dicts."""
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(
        output_dir=str(out / ".trainer"),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        learning_rate=config.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        per_device_train_batch_size=config.batch_size,
        max_length=config.max_length,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        seed=config.seed,
        use_cpu=device == "cpu",
        bf16=_cpu_bf16(device),
        disable_tqdm=True,  # the trainer then prints each log dict (PrinterCallback): replaced below
    )
    lora = LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=list(config.target_modules),
        task_type="CAUSAL_LM",
    )
    with engine_output():  # loading and tokenizing talk (bars, notes) into the log
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        examples = [example(row, template_native(tokenizer)) for row in rows]
        check_lengths([token_count(tokenizer, e) for e in examples], config.max_length)
        base = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
        trainer = SFTTrainer(
            model=base,
            args=args,
            train_dataset=training_dataset(examples),
            peft_config=lora,
            processing_class=tokenizer,
        )
    for printer in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(printer)
    trainer.add_callback(progress_callback())
    started = time.perf_counter()
    trainer.train()
    return trainer, time.perf_counter() - started


def progress_callback() -> Any:
    """A transformers TrainerCallback drawing one bar on stderr: step of steps, loss, time left (tqdm, as
    the run's progress does)."""
    from tqdm import tqdm
    from transformers import TrainerCallback

    class TrainingProgress(TrainerCallback):  # type: ignore[misc]
        bar: Any = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.bar = tqdm(total=state.max_steps, desc="finetune", unit="step", file=sys.stderr, leave=False)

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.bar.update(state.global_step - self.bar.n)

        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
        ) -> None:
            if self.bar is not None and logs and "loss" in logs:
                self.bar.set_postfix(loss=f"{logs['loss']:.4f}", refresh=False)

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.bar is not None:
                self.bar.close()

    return TrainingProgress()


def compact_adapter_weights(out: Path) -> None:
    """Store the LoRA weights in bfloat16: half the size on disk (small enough to commit), and the
    precision engines compute in anyway."""
    import torch
    from safetensors.torch import load_file, save

    path = out / "adapter_model.safetensors"
    tensors = load_file(path)
    # Through write_file (not save_file in place): a full disk must not leave a torn adapter behind.
    write_file(
        path, save({k: v.to(torch.bfloat16).contiguous() for k, v in tensors.items()}, metadata={"format": "pt"})
    )


def _point_adapter_at(out: Path, model_name: str) -> None:
    """Record the base model by the name runs use (not a cache path that differs per machine)."""
    path = out / "adapter_config.json"
    config = json.loads(path.read_text())
    config["base_model_name_or_path"] = model_name
    write_file(path, json.dumps(config, indent=2, sort_keys=True) + "\n")


def _cpu_bf16(device: str) -> bool:
    """bf16 autocast on a CPU that computes bf16 natively; float32 elsewhere (emulated bf16 is far slower)."""
    import torch

    return device == "cpu" and torch.backends.mkldnn.is_available() and native_bf16_cpu()


def _training_record(suite, config, model_name, seconds, device, n, losses) -> dict[str, Any]:  # noqa: ANN001
    return {
        "suite": suite.name,
        "model": model_name,
        "train_items": n,
        "train_data_sha256": {suite.config.data.train: suite.data_sha256[suite.config.data.train]},
        "config": asdict(config),
        "device": device,
        "precision": "bf16 autocast" if _cpu_bf16(device) else "float32",
        "train_seconds": round(seconds, 1),
        "final_loss": losses[-1][1] if losses else None,
    }


def _write_training_record(out: Path, record: dict[str, Any], losses: list[tuple[int, float]]) -> None:
    write_file(out / "training.json", json.dumps(record, indent=2, sort_keys=True) + "\n")
    write_file(out / "loss_curve.csv", "step,loss\n" + "".join(f"{s},{loss:.6f}\n" for s, loss in losses))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    figure, axis = plt.subplots(figsize=(6, 3.5))
    axis.plot([s for s, _ in losses], [v for _, v in losses])
    axis.set(xlabel="step", ylabel="training loss", title=f"LoRA SFT on {record['suite']}")
    figure.tight_layout()
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=100)
    plt.close(figure)
    write_file(out / "loss_curve.png", image.getvalue())


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
