"""Where the heavy work runs: in this process (default) or on a Dask cluster.

One setting, the ``cluster:`` parameter block shared by the pipelines (docs/cluster.md)::

    cluster:
      address: null        # null: in-process | local: a LocalCluster | tcp://host:8786 | slurm
      n_workers: 2         # local: worker processes; slurm: jobs (one worker each)
      threads_per_worker: 1
      jobqueue_config: conf/base/cluster_slurm.yaml   # slurm only: dask-jobqueue settings
      connect_timeout: 10  # seconds to reach a scheduler before giving up

:func:`cluster_client` opens the cluster (or connects to it) and yields a
``distributed.Client``, or ``None`` for in-process work. What runs on it: embedding
(``encoders.distributed``: work split by document, each worker loads each encoder once and fills
the shared feature cache), evaluation (the (method, fold) fits through joblib's Dask backend) and
tuning (one study worker per Dask worker, sharing the study storage).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hilbert_pipeline.errors import UserError
from hilbert_pipeline.utils import int_at_least

log = logging.getLogger(__name__)

KEYS = {"address", "n_workers", "threads_per_worker", "jobqueue_config", "connect_timeout",
        "memory_limit"}


class ClusterError(UserError):
    """The cluster setting is invalid or the scheduler cannot be reached."""


@dataclass(frozen=True)
class ClusterSettings:
    address: str | None = None
    n_workers: int = 2
    threads_per_worker: int = 1
    jobqueue_config: str | None = None
    connect_timeout: float = 10.0
    memory_limit: str | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> ClusterSettings:
        params = dict(params or {})
        stray = sorted(set(params) - KEYS)
        if stray:
            raise ClusterError(f"parameters 'cluster': unknown key(s) {stray} (known: "
                               f"{sorted(KEYS)})")
        s = cls(**params)
        if s.address is not None and not isinstance(s.address, str):
            raise ClusterError(f"cluster.address must be null, 'local', 'slurm' or a scheduler "
                               f"address such as tcp://host:8786, got {s.address!r}")
        if s.address not in (None, "local", "slurm") and "://" not in str(s.address):
            raise ClusterError(f"cluster.address {s.address!r} is not understood: use null "
                               "(in-process), 'local', 'slurm' or a scheduler address such as "
                               "tcp://host:8786")
        for name in ("n_workers", "threads_per_worker"):
            v = getattr(s, name)
            if not int_at_least(v, 1):
                raise ClusterError(f"cluster.{name} must be an integer >= 1, got {v!r}")
        if s.address == "slurm" and not s.jobqueue_config:
            raise ClusterError("cluster.address: slurm needs cluster.jobqueue_config (a "
                               "dask-jobqueue YAML file, e.g. conf/base/cluster_slurm.yaml)")
        return s

    @property
    def in_process(self) -> bool:
        return self.address is None


def slurm_cluster(config_path: str | Path, **overrides: Any):
    """A ``dask_jobqueue.SLURMCluster`` from a dask-jobqueue YAML file (``jobqueue: slurm:``)."""
    import yaml
    from dask_jobqueue import SLURMCluster

    path = Path(config_path)
    if not path.is_file():
        raise ClusterError(f"cluster.jobqueue_config: {path} does not exist")
    try:
        conf = (yaml.safe_load(path.read_text()) or {})["jobqueue"]["slurm"]
    except (KeyError, TypeError, yaml.YAMLError) as exc:
        raise ClusterError(f"{path}: expected a dask-jobqueue file with a 'jobqueue: slurm:' "
                           f"block ({exc})") from exc
    return SLURMCluster(**{**conf, **overrides})


@contextlib.contextmanager
def cluster_client(settings: ClusterSettings | Mapping[str, Any] | None) -> Iterator[Any]:
    """Yield a ``distributed.Client`` for ``settings`` (``None`` when in-process).

    ``local`` starts a ``LocalCluster`` of worker processes for the duration; ``slurm`` submits
    ``n_workers`` jobs with dask-jobqueue; an address connects to a running scheduler and fails
    within ``connect_timeout`` seconds with a :class:`ClusterError` when it cannot.
    """
    if not isinstance(settings, ClusterSettings):
        settings = ClusterSettings.from_params(settings)
    if settings.in_process:
        yield None
        return
    from distributed import Client, LocalCluster

    with contextlib.ExitStack() as stack:
        if settings.address == "local":
            cluster = stack.enter_context(LocalCluster(
                n_workers=settings.n_workers, threads_per_worker=settings.threads_per_worker,
                processes=True, dashboard_address=":0", memory_limit=settings.memory_limit or
                "auto", silence_logs=logging.WARNING))
            client = stack.enter_context(Client(cluster))
        elif settings.address == "slurm":
            cluster = stack.enter_context(slurm_cluster(settings.jobqueue_config))
            cluster.scale(jobs=settings.n_workers)
            client = stack.enter_context(Client(cluster))
        else:
            try:
                client = stack.enter_context(Client(settings.address,
                                                    timeout=settings.connect_timeout))
            except (OSError, TimeoutError, ValueError) as exc:
                raise ClusterError(
                    f"cannot reach the Dask scheduler at {settings.address} within "
                    f"{settings.connect_timeout:g} s ({type(exc).__name__}: {exc}). Start one "
                    "(`dask scheduler`, then `dask worker <address>` on each machine), or set "
                    "cluster.address to null (in-process) or 'local'.") from exc
        log.info("Dask cluster %s: %d worker(s); dashboard %s", settings.address,
                 len(client.scheduler_info().get("workers", {})), client.dashboard_link)
        yield client
