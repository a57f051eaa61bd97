"""Same seed, same numbers on another x86 machine: pin the CPU kernels before torch loads.

PyTorch and the libraries under it pick their CPU kernels per machine: ATen's vectorised
kernels follow the CPU's widest instruction set (AVX-512 here, AVX2 on many laptops and
servers), MKL picks its own code path, oneDNN its own. Each path adds floating-point numbers in
another order, so one training run gives other weights on another CPU even with the same seed
and thread count. This module fixes the choice (the default mode, ``portable``):

=======================  ======================  ====================================
variable                 value                   what it decides
=======================  ======================  ====================================
``ATEN_CPU_CAPABILITY``  ``avx2``                PyTorch's vectorised CPU kernels
``MKL_CBWR``             ``COMPATIBLE,STRICT``   MKL's code path (conditional numerical
                                                 reproducibility, strict mode)
``ONEDNN_MAX_CPU_ISA``   ``AVX2``                the widest ISA oneDNN's kernels use
``CT2_FORCE_CPU_ISA``    ``AVX2``                CTranslate2's kernels (the ``whisper``
                                                 encoder and the transcribe step)
=======================  ======================  ====================================

and :func:`network_numerics` switches torch's oneDNN backend off around every fit and
prediction of the network, so that its operations run on ATen's kernels (pinned to AVX2) and
MKL. **Why ``COMPATIBLE`` and oneDNN off**: MKL honours an ``AVX2`` branch on Intel CPUs only;
on an AMD CPU it takes its ``AUTO`` branch (Intel's CNR documentation), while ``COMPATIBLE`` is
the branch Intel documents to give the same results on Intel and compatible processors; and
oneDNN sizes its kernels from the CPU's caches, which no variable fixes. Measured: with MKL on
its AVX2 branch and oneDNN in the network (the ``pinned`` mode, the default until 2026-12-02),
the same code, features and package versions gave the demo's hilbert 0.537 on an AMD EPYC and
0.531 on an Intel Xeon. On one machine (no second CPU here), tests check that MKL's branch and
oneDNN's level asked for by the shell no longer change the weights. The cost is not
measurable (300 training steps: 5.7 s pinned, 5.8 s portable).

``HILBERT_CPU_KERNELS=pinned`` keeps MKL on ``AVX2,STRICT`` and oneDNN in the network (the same
numbers on AVX2 machines of one CPU vendor only); ``HILBERT_CPU_KERNELS=native`` (the opt-out)
leaves every variable as the environment has it: faster on AVX-512 machines, other numbers on
other CPUs.

A CPU without AVX2 gets ``default`` / ``COMPATIBLE,STRICT`` / ``SSE41`` / ``GENERIC`` (the same
numbers as any other machine pinned to that level, not those of an AVX2 machine). Thread counts
are the last part: every fit runs with ``training.optim.num_threads`` threads (1 by default),
because ATen splits reductions by thread.

:func:`pin` runs when ``hilbert_pipeline`` is imported, before anything in the package imports
torch; every entry point (the Kedro CLI through ``settings.py``, Dask workers, which import the
package to unpickle a task and inherit the variables on a local cluster, the benchmarks, the
tests) imports the package first. The values overwrite what the environment had, so the numbers
do not depend on the shell.
CUDA runs are not bit-reproducible across GPUs or library versions; this pins only CPU code.
:func:`fingerprint` is written into ``metrics.json`` so that two runs can be compared.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import threading
import warnings
from collections.abc import Iterator

#: the environment variable: ``portable`` (default: Intel = AMD), ``pinned`` (one CPU vendor),
#: ``native`` (opt-out)
MODE_VARIABLE = "HILBERT_CPU_KERNELS"
MODES = ("portable", "pinned", "native")
DEFAULT_MODE = "portable"

_AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2,STRICT", "ONEDNN_MAX_CPU_ISA": "AVX2",
         "CT2_FORCE_CPU_ISA": "AVX2"}
#: ``portable`` (the default): the same, with MKL on its vendor-independent branch (and oneDNN
#: off the network)
_PORTABLE = {"MKL_CBWR": "COMPATIBLE,STRICT"}
_BASELINE = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE,STRICT",
             "ONEDNN_MAX_CPU_ISA": "SSE41", "CT2_FORCE_CPU_ISA": "GENERIC"}

#: what :func:`pin` did in this process: mode, the values set, the ambient values replaced
STATE: dict = {}


def is_x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")


def has_avx2() -> bool:
    """AVX2 and FMA, as NumPy's own CPU dispatcher detected them (every platform); False when
    NumPy cannot tell."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # numpy < 2
        try:
            from numpy.core._multiarray_umath import __cpu_features__ as features
        except ImportError:
            return False
    return bool(features.get("AVX2") and features.get("FMA3"))


def pinned_values(mode: str = DEFAULT_MODE) -> dict[str, str]:
    """The variables and values this machine is pinned to in ``mode`` (``pinned`` or
    ``portable``; {} off x86: ARM machines have other kernels, so there is no common level to
    pin)."""
    if not is_x86():
        return {}
    values = dict(_AVX2 if has_avx2() else _BASELINE)
    if mode == "portable":
        values.update(_PORTABLE)
    return values


def pin(environ=None) -> dict:
    """Set the kernel-choosing variables in ``environ`` (``os.environ``) unless the mode is
    ``native``; returns (and keeps in :data:`STATE`) what was done. Torch already imported
    means its kernels may already be chosen: a warning says so."""
    env = os.environ if environ is None else environ
    mode = str(env.get(MODE_VARIABLE, DEFAULT_MODE)).strip().lower() or DEFAULT_MODE
    if mode not in MODES:
        warnings.warn(f"{MODE_VARIABLE}={env.get(MODE_VARIABLE)!r} is not one of {MODES}; "
                      f"pinning the CPU kernels ({DEFAULT_MODE}, the default)", stacklevel=2)
        mode = DEFAULT_MODE
    state: dict = {"mode": mode, "values": {}, "replaced": {}}
    if mode in ("pinned", "portable"):
        if environ is None and "torch" in sys.modules:
            warnings.warn("torch was imported before hilbert_pipeline, so its CPU kernels may "
                          "not follow the project's pinning; import hilbert_pipeline first "
                          "(docs/reproducibility.md)", stacklevel=2)
        for key, value in pinned_values(mode).items():
            ambient = env.get(key)
            if ambient is not None and ambient != value:
                state["replaced"][key] = ambient
            env[key] = value
            state["values"][key] = value
    if environ is None:
        STATE.clear()
        STATE.update(state)
    return state


def _onednn_off() -> bool:
    """Whether :func:`network_numerics` keeps oneDNN off the network in this process."""
    return STATE.get("mode") == "portable" and bool(STATE.get("values"))


#: blocks of :func:`network_numerics` open in this process (any thread), and oneDNN's setting
#: before the first of them: the switch is process-wide, and one process may run two fits at once
#: (a Dask worker does, through joblib's Dask backend, even with one thread per worker)
_HOLD = {"depth": 0, "before": None}
_HOLD_LOCK = threading.Lock()


@contextlib.contextmanager
def network_numerics() -> Iterator[None]:
    """In ``portable`` mode, the block trains or applies a network with kernels that give the same
    numbers on every AVX2 x86 CPU: torch's oneDNN (mkldnn) backend is off, so its operations run
    on ATen's kernels (pinned to AVX2) and MKL (on its COMPATIBLE branch). oneDNN's JIT kernels
    size their blocks from the CPU's caches, and no setting fixes that across processors. Other
    modes: nothing changes. Used around every fit and prediction of the trained network (not
    around the frozen encoders).

    oneDNN's switch belongs to the process, not to a thread, so blocks in several threads share
    one hold on it: the first to open turns oneDNN off, the last to close restores it. A
    save-and-restore per block lets a block that ends in one thread turn oneDNN back on under a
    fit still running in another (measured: a Dask worker ran two fits at once, and one fold's
    probabilities moved by up to 0.0022 between runs of the same evaluation)."""
    if not _onednn_off():
        yield
        return
    import torch

    mkldnn = torch.backends.mkldnn
    with _HOLD_LOCK:
        if _HOLD["depth"] == 0:
            _HOLD["before"] = mkldnn.enabled
        _HOLD["depth"] += 1
        # set alone: flags() also sets oneDNN's TF32 and warns about it
        mkldnn.enabled = False
    try:
        yield
    finally:
        with _HOLD_LOCK:
            _HOLD["depth"] -= 1
            if _HOLD["depth"] == 0:
                mkldnn.enabled = _HOLD["before"]


def fingerprint() -> dict:
    """What decides the numbers on this machine: versions, the CPU capability torch actually
    uses, the pinning mode and values. Written into metrics.json."""
    import numpy
    import sklearn
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "machine": platform.machine(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "kernels": STATE.get("mode", "unknown"),
        "pinned": dict(STATE.get("values", {})),
        "onednn_in_network": not _onednn_off(),
        "cuda": torch.cuda.is_available(),
        "scikit_learn": sklearn.__version__,
    }
