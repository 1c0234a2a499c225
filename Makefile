# kolmo — fresh-machine entry points. `make demo` and `make test` create and reuse ./.venv.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin

# Numba's cache=True needs a writable folder; FFTW wisdom is cached beside it.
export NUMBA_CACHE_DIR ?= $(CURDIR)/.numba_cache
export KOLMO_CACHE_DIR ?= $(CURDIR)/.kolmo_cache
# glibc keeps big buffers mapped instead of returning them every step (page faults cost ~2 µs here).
export MALLOC_MMAP_THRESHOLD_ ?= 67108864
export MALLOC_TRIM_THRESHOLD_ ?= 268435456

.PHONY: demo test install bench clean

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet --constraint constraints.txt -e ".[test,plots,distributed]"
	touch $@

install: $(BIN)/.installed

DEMO_SIZE ?= tiny
demo: $(BIN)/.installed
	$(BIN)/kolmo demo --size $(DEMO_SIZE) --out demo

test: $(BIN)/.installed
	$(BIN)/python -m pytest -q

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/solver.py --json benchmarks/solver.json

clean:
	rm -rf $(VENV) .numba_cache .kolmo_cache .pytest_cache
