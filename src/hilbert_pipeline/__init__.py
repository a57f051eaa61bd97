"""hilbert_pipeline: reference implementation of HILBERT as a Kedro project."""

import os

# Nothing may download from a model hub at run time: every model comes from a package or a local path.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# Before anything imports torch: the same seed gives the same numbers on another x86 machine
# (docs/reproducibility.md; HILBERT_CPU_KERNELS=native opts out).
from hilbert_pipeline import cpu_kernels as _cpu_kernels  # noqa: E402

_cpu_kernels.pin()

__version__ = "0.1.0"
