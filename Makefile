# qabot: `make run` starts the bot on corpus/, `make test` runs the whole test suite.
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: setup run index test bench clean

setup:
	@bash scripts/setup.sh

index: setup
	HF_HUB_OFFLINE=1 $(BIN)/qabot index

run: index
	HF_HUB_OFFLINE=1 $(BIN)/qabot serve --host $(HOST) --port $(PORT)

test: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

clean:
	rm -rf index/gen-* index/CURRENT index/.lock var/ .pytest_cache
