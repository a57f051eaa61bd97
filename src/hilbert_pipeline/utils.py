"""Small shared helpers: atomic file writes, seeding, device choice, JSON I/O.

Pure Python / PyTorch; no Kedro import, so the model library and the pipelines can both use them.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from hilbert_pipeline.errors import UserError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    A crash (or exception) while writing leaves the previous file untouched and removes the
    temporary one, so a good artifact is never replaced by a half-written one.

    The file gets the permissions a plain ``open(path, "w")`` would give it: those of the file
    it replaces, else ``0o666`` less the process umask. (``mkstemp`` creates its file ``0o600``;
    kept as it is, every artifact would be unreadable to the rest of a lab group or to Dask
    workers running as another user.)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, _mode_for(path))
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _mode_for(path: Path) -> int:
    """Permission bits for a new version of ``path``: the old file's, else 0o666 less the umask."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process umask, read without changing it where Linux says it (/proc); elsewhere set
    and restored at once (another thread creating a file in between would get mode 0o666)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0)
    os.umask(umask)
    return umask


def json_text(obj: Any) -> str:
    """``obj`` as the project's JSON files hold it: indented, numpy values as plain numbers."""
    return json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n"


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json_text(obj))


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def int_at_least(v: Any, lo: int) -> bool:
    """``v`` is an integer (not a bool) of at least ``lo``: the check of every integer
    parameter."""
    return isinstance(v, int) and not isinstance(v, bool) and v >= lo


def reject_unknown_keys(where: str, given, known, error: type[Exception] = ValueError,
                        known_label: str = "known") -> None:
    """Raise ``error`` naming every key of ``given`` that is not in ``known``.

    Parameter blocks are checked this way so that a typo (``lamda_mi``) is an error, not a
    silently ignored setting.
    """
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise error(f"{where} has unknown keys {unknown} ({known_label}: {sorted(known)})")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) from one explicit seed."""
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


class DeviceError(UserError):
    """A device setting this machine cannot honour (an unknown name, CUDA without a GPU)."""


def resolve_device(device: str = "auto") -> "torch.device":  # noqa: F821
    """``"auto"`` picks CUDA, then Apple MPS, then CPU; ``cpu``, ``cuda``, ``cuda:N`` and
    ``mps`` must be available here (:class:`DeviceError` says so when they are not, instead of
    a failure deep inside PyTorch at the first tensor moved)."""
    import torch

    mps = getattr(torch.backends, "mps", None)
    has_mps = mps is not None and mps.is_available()
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if has_mps else "cpu")
    dev = check_device_name(device)
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            built = "" if torch.version.cuda else ", a build without CUDA"
            raise DeviceError(f"device {device!r}: PyTorch sees no CUDA GPU on this machine "
                              f"(torch {torch.__version__}{built}); use auto or cpu")
        if dev.index is not None and dev.index >= n:
            raise DeviceError(f"device {device!r}: this machine has {n} CUDA GPU(s), "
                              f"cuda:0 to cuda:{n - 1}")
    elif dev.type == "mps" and not has_mps:
        raise DeviceError(f"device {device!r}: Apple MPS is not available here; use auto or cpu")
    return dev


def check_device_name(device: str) -> "torch.device | None":  # noqa: F821
    """The device a setting names (None for ``auto``), or :class:`DeviceError` for a name that
    is none of auto, cpu, cuda, cuda:N, mps. Whether this machine has it is not asked: on a
    cluster the GPUs are the workers', and :func:`resolve_device` checks there."""
    import torch

    if device == "auto":
        return None
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise DeviceError(f"unknown device {device!r}: use auto, cpu, cuda, cuda:N or mps") \
            from exc
    if dev.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"unknown device {device!r}: use auto, cpu, cuda, cuda:N or mps")
    return dev


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Use ``n`` torch intra-op threads inside the block (None: leave as is).

    Changes only when needed: resizing the thread pool on every call is slow on a busy CPU.
    """

    import torch

    before = torch.get_num_threads()
    change = n is not None and n != before
    if change:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if change:
            torch.set_num_threads(before)
