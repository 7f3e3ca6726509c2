"""What a run's numbers depend on beyond its config: library versions and the kernels torch dispatches to.

Training here is bitwise deterministic on one machine, but not across CPU instruction sets: torch and MKL pick
AVX2 or AVX-512 kernels at run time, their float rounding differs, and a sensitive run (the reasoning world's
SFT curriculum) follows another trajectory from the first steps (docs/results/reasoning/README.md,
"Reproducibility of the warm start"). So every SFT base and RL run directory records :func:`describe`.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from mssr import __version__

PACKAGES = ("transformers", "tokenizers", "pillow", "numpy", "peft", "vllm")
# environment variables that change which kernels run or how many threads reduce
KERNEL_VARIABLES = (
    "ATEN_CPU_CAPABILITY",
    "MKL_CBWR",
    "MKL_NUM_THREADS",
    "OMP_NUM_THREADS",
    "CUBLAS_WORKSPACE_CONFIG",
)


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def cpu_model(cpuinfo: str | Path = "/proc/cpuinfo") -> str | None:
    """The first ``model name`` of ``cpuinfo`` (Linux), else :func:`platform.processor` or None."""
    try:
        for line in Path(cpuinfo).read_text(encoding="utf-8", errors="replace").splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() == "model name":
                return value.strip() or None
    except OSError:
        pass
    return platform.processor() or None


def describe() -> dict[str, Any]:
    """Versions (Python, mssr, torch and the libraries in :data:`PACKAGES`; None when not installed), the machine,
    the CPU model, the CPU capability torch's kernels use (``torch.backends.cpu.get_cpu_capability()``: e.g.
    ``AVX2``, ``AVX512``), the torch thread count, the CUDA device if any, and the kernel-selecting variables
    of :data:`KERNEL_VARIABLES` that are set."""
    cuda = torch.cuda.is_available()
    return {
        "python": platform.python_version(),
        "mssr": __version__,
        "torch": torch.__version__,
        **{name: _version(name) for name in PACKAGES},
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
        "cuda_device": torch.cuda.get_device_name(0) if cuda else None,
        "variables": {k: os.environ[k] for k in KERNEL_VARIABLES if k in os.environ},
    }
