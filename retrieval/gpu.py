"""FAISS on a GPU, when the installed faiss was built with CUDA and a GPU is visible.

`faiss-cpu` (the default dependency) has no GPU support; `faiss-gpu-cu12` does. The choice is
MMKB_FAISS_GPU: `auto` uses a GPU when one can be used, `on` insists (a clear error
otherwise, rather than a silent fall back to CPU on a machine meant to use its GPU), `off`
never uses one.
"""

from __future__ import annotations

import faiss

GPU_MODES = ("auto", "on", "off")


class GpuUnavailable(RuntimeError):
    """MMKB_FAISS_GPU=on, but this faiss build or this machine cannot search on a GPU."""


def gpu_faiss_available() -> bool:
    """True when this faiss build has GPU support and at least one GPU is visible."""
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def why_no_gpu() -> str:
    if not hasattr(faiss, "StandardGpuResources"):
        return f"the installed faiss {faiss.__version__} is a CPU-only build (install faiss-gpu-cu12 instead of faiss-cpu)"
    return "faiss has GPU support but sees no GPU (faiss.get_num_gpus() == 0)"


def resolve_faiss_device(mode: str) -> str:
    """'gpu' or 'cpu' for an MMKB_FAISS_GPU value."""
    if mode not in GPU_MODES:
        raise ValueError(f"MMKB_FAISS_GPU must be one of {', '.join(GPU_MODES)}, not {mode!r}")
    if mode == "off":
        return "cpu"
    if gpu_faiss_available():
        return "gpu"
    if mode == "on":
        raise GpuUnavailable(f"MMKB_FAISS_GPU=on but {why_no_gpu()}; set MMKB_FAISS_GPU=auto or off to search on the CPU")
    return "cpu"


class GpuResources:
    """One StandardGpuResources (scratch memory, CUDA streams) shared by the stores of a process:
    each instance reserves a slice of GPU memory, so one per index would waste it."""

    def __init__(self, device_id: int = 0) -> None:
        if not gpu_faiss_available():
            raise GpuUnavailable(why_no_gpu())
        self.device_id = device_id
        self.resources = faiss.StandardGpuResources()

    def to_gpu(self, index: faiss.Index) -> faiss.Index:
        return faiss.index_cpu_to_gpu(self.resources, self.device_id, index)
