import harness


def test_all_names_exist_and_are_sorted_uniquely() -> None:
    assert len(set(harness.__all__)) == len(harness.__all__)
    for name in harness.__all__:
        assert hasattr(harness, name), name


def test_importing_harness_does_not_import_engines() -> None:
    import subprocess
    import sys

    code = "import sys, harness; print(any(m in sys.modules for m in ('vllm', 'torch', 'transformers', 'lm_eval')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_the_public_names_are_sorted_and_each_is_the_defining_modules_object() -> None:
    import importlib

    assert harness.__all__ == sorted(harness.__all__)
    for name, module in harness._LAZY.items():
        assert getattr(harness, name) is getattr(importlib.import_module(module), name)


def test_importing_the_core_loads_no_runner_engine_or_cache_module() -> None:
    """`import harness.core` (and so `import harness`) stays light: the layers above load on first use."""
    import subprocess
    import sys

    code = "import sys, harness.core; print(sorted(m for m in sys.modules if m.startswith('harness')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = eval(out)  # a printed list of module names
    heavy = [
        m for m in loaded if m.startswith(("harness.run", "harness.engines", "harness.variants", "harness.scoring"))
    ]
    assert heavy == [], heavy
    assert "harness.core.types" in loaded
