"""What a benchmark ran on: device, driver, CPU and library versions (recorded with every result)."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import platform
import shutil
import subprocess
from dataclasses import asdict, dataclass
from typing import Any

from qlora_eval.errors import DeviceError

_LIBRARIES = ("torch", "transformers", "peft", "accelerate", "bitsandbytes", "datasets")


@dataclass(frozen=True)
class HardwareInfo:
    """The machine and software a figure was measured with.

    Attributes:
        device: ``cuda`` or ``cpu``.
        gpu_name: the CUDA device name, None on the CPU.
        gpu_memory_gib: total memory of the CUDA device, None on the CPU.
        driver: the NVIDIA driver version (from ``nvidia-smi``), None when unknown.
        cuda: the CUDA version torch was built with, None for a CPU build.
        cpu: the CPU model name.
        cpu_count: logical CPUs visible to this process.
        python: the Python version.
        platform: the OS string.
        versions: library name -> version ("not installed" when absent).
    """

    device: str
    gpu_name: str | None
    gpu_memory_gib: float | None
    driver: str | None
    cuda: str | None
    cpu: str
    cpu_count: int
    python: str
    platform: str
    versions: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def library_version(name: str) -> str:
    """The installed version of a library, read from its module first (the GPU image has a trimmed
    bitsandbytes copy without package metadata), then from package metadata."""
    try:
        module = importlib.import_module(name)
    except ImportError:
        return "not installed"
    version = getattr(module, "__version__", None)
    if isinstance(version, str):
        return version
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def cpu_name() -> str:
    """The CPU model from ``/proc/cpuinfo`` (Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def nvidia_driver() -> str | None:
    """The driver version reported by ``nvidia-smi``; None when the tool is absent or fails."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.strip().splitlines()
    return lines[0].strip() if lines else None


def hardware_info(device: str) -> HardwareInfo:
    """Describe the machine for a benchmark that runs on ``device`` (``cuda`` or ``cpu``)."""
    import torch

    gpu_name: str | None = None
    gpu_memory: float | None = None
    if device == "cuda":
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        gpu_name = props.name
        gpu_memory = round(props.total_memory / 2**30, 2)
    return HardwareInfo(
        device=device,
        gpu_name=gpu_name,
        gpu_memory_gib=gpu_memory,
        driver=nvidia_driver() if device == "cuda" else None,
        cuda=torch.version.cuda,
        cpu=cpu_name(),
        cpu_count=os.cpu_count() or 1,
        python=platform.python_version(),
        platform=platform.platform(),
        versions={name: library_version(name) for name in _LIBRARIES},
    )


def require_device(device: str, what: str) -> None:
    """Fail with a clear message when ``device`` is ``cuda`` and no CUDA GPU is visible.

    Raises:
        DeviceError: naming the benchmark and the CPU alternative.
        ConfigError-like DeviceError: for a device name other than cuda/cpu.
    """
    if device not in ("cuda", "cpu"):
        raise DeviceError(f"{what}: device must be 'cuda' or 'cpu', got {device!r}")
    if device == "cpu":
        return
    import torch

    if not torch.cuda.is_available():
        raise DeviceError(
            f"{what} needs a CUDA GPU and this machine has none (torch {torch.__version__}, "
            f"CUDA build: {torch.version.cuda}). Run it on a GPU machine, or try a CPU smoke run "
            "with '--shape tiny --device cpu'."
        )
