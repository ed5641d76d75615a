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
