"""Optuna study storage, resumption and the worker loop (several workers, one study).

Storage
    Any SQLAlchemy URL that Optuna's ``RDBStorage`` accepts. The default is a SQLite file
    (``sqlite:///data/06_models/optuna.db``, relative to the working directory, i.e. the project
    root under ``kedro run``); a PostgreSQL URL (``postgresql+psycopg2://user:pw@host/db``) lets
    workers on several machines share one study. The study is opened with
    ``load_if_exists=True``, so starting a worker again resumes it.

Exact trial budget
    ``n_trials`` is the total for the *study*, not per worker. Optuna's ``MaxTrialsCallback`` only
    checks after a trial ends, so two workers may both start "the last" trial and overshoot. Here
    a worker claims a slot under a lock shared by all workers of the study -- a PostgreSQL
    advisory lock, MySQL ``GET_LOCK`` or an ``flock`` on ``<sqlite file>.lock`` -- counting
    COMPLETE + PRUNED + RUNNING trials and only then calling ``study.ask()``. The study therefore
    ends with exactly ``n_trials`` COMPLETE + PRUNED trials (FAILED trials, e.g. of a killed
    worker, free their slot and are redone). When the free slots are all held by RUNNING trials
    a worker waits for them instead of leaving, so the study is complete when any worker ends
    with "n_trials reached".

Killed workers (zombie RUNNING trials)
    A worker killed with SIGKILL leaves its trial RUNNING for ever. Workers record a heartbeat
    (Optuna's RDB heartbeat table) every ``heartbeat_interval`` seconds while a trial runs, the
    first one inside the claim lock right after ``ask()``; before claiming a slot every worker
    fails RUNNING trials whose heartbeat is older than ``grace_period`` seconds
    (``optuna.storages.fail_stale_trials``). A live worker's trial is never failed, so this is
    safe with several workers, unlike failing every RUNNING trial on start.

Seeds
    The TPE sampler is re-created before each ``ask()`` with ``seed + trial.number`` (the number
    is known inside the claim lock). A single worker is then reproducible from the seed, and a
    resumed or second worker does not repeat the first worker's random start-up points (a
    sampler seeded once per process would).

Timeout
    ``timeout`` (seconds) stops a worker from *starting* new trials; a running trial finishes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from hilbert_pipeline.errors import UserError
from hilbert_pipeline.utils import int_at_least

log = logging.getLogger(__name__)

DEFAULT_STORAGE = "sqlite:///data/06_models/optuna.db"
#: ``tuning.storage: dask``: the study in optuna-integration's DaskStorage on the Dask scheduler
#: (no database needed; lives as long as the cluster)
DASK_STORAGE = "dask"
#: the pseudo-URL of a study on the Dask scheduler (:func:`on_dask`)
_DASK_URL = "dask://"


def on_dask(url: str) -> bool:
    """Whether ``url`` (a :class:`StudyHandle`'s) names a study kept on the Dask scheduler."""
    return url.startswith(_DASK_URL)
#: the one set of defaults of the study settings (conf/base/parameters_tuning.yml states the same)
N_STARTUP_TRIALS = 8
PRUNER_STARTUP_TRIALS = 5
PRUNER_WARMUP_STEPS = 3
HEARTBEAT_INTERVAL = 30
#: states that use up the study's trial budget
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)
CLAIMED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


class TuningConfigError(UserError):
    """A tuning parameter (storage URL, budget, pruner settings) is invalid."""


@dataclass
class StudyHandle:
    """An opened study with the pieces a worker needs."""

    study: optuna.Study
    storage: optuna.storages.RDBStorage
    url: str
    seed: int
    n_startup_trials: int

    def new_sampler(self, trial_number: int) -> optuna.samplers.TPESampler:
        return optuna.samplers.TPESampler(seed=self.seed + trial_number,
                                          n_startup_trials=self.n_startup_trials)


@dataclass
class WorkerResult:
    """What one worker did: trial numbers it finished, by final state, and why it stopped."""

    completed: list[int] = field(default_factory=list)
    pruned: list[int] = field(default_factory=list)
    stop_reason: str = ""
    study_finished: int = 0


def resolve_storage_url(storage: str | None) -> str:
    """Validate ``storage``; make the folder of a SQLite file exist. None -> the default."""
    url = storage or DEFAULT_STORAGE
    if not isinstance(url, str) or "://" not in url:
        raise TuningConfigError(f"tuning.storage must be a SQLAlchemy URL such as "
                                f"{DEFAULT_STORAGE!r} or postgresql+psycopg2://user@host/db, "
                                f"got {storage!r}")
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    return url


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL (None for in-memory or other backends)."""
    if not url.startswith("sqlite:"):
        return None
    rest = url.split("://", 1)[1]
    if not rest.startswith("/") or rest in ("/", "/:memory:"):
        return None
    return Path(rest[1:].split("?", 1)[0])


def open_study(storage: str | None | optuna.storages.BaseStorage, study_name: str, *, seed: int,
               n_startup_trials: int = N_STARTUP_TRIALS,
               pruner_startup_trials: int = PRUNER_STARTUP_TRIALS,
               pruner_warmup_steps: int = PRUNER_WARMUP_STEPS,
               heartbeat_interval: int = HEARTBEAT_INTERVAL, grace_period: int | None = None,
               fingerprint: str | None = None) -> StudyHandle:
    """Create or resume (``load_if_exists``) the maximising study ``study_name``.

    ``fingerprint`` identifies what the trials measure (objective, data, search space). It is
    stored with a new study; resuming a study stored with a different fingerprint is an error,
    because its old trials would be compared with new ones measured differently.
    """
    if not isinstance(study_name, str) or not study_name:
        raise TuningConfigError(f"tuning.study_name must be a non-empty string, got "
                                f"{study_name!r}")
    for name, v, lo in (("seed", seed, 0), ("n_startup_trials", n_startup_trials, 0),
                        ("pruner_startup_trials", pruner_startup_trials, 0),
                        ("pruner_warmup_steps", pruner_warmup_steps, 0),
                        ("heartbeat_interval", heartbeat_interval, 1)):
        if not int_at_least(v, lo):
            raise TuningConfigError(f"tuning.{name} must be an integer >= {lo}, got {v!r}")
    if grace_period is not None and (not isinstance(grace_period, int) or
                                     grace_period <= heartbeat_interval):
        raise TuningConfigError(f"tuning.grace_period must be an integer > heartbeat_interval "
                                f"({heartbeat_interval}) or null, got {grace_period!r}")
    given = storage if isinstance(storage, optuna.storages.BaseStorage) else None
    # a storage object (optuna-integration's DaskStorage): no URL, a Dask lock (claim_lock)
    url = f"{_DASK_URL}{study_name}" if given is not None else resolve_storage_url(storage)
    # Workers started together would race to create Optuna's tables (PostgreSQL then fails on a
    # duplicate type); creating the schema and the study under the claim lock serialises that.
    with claim_lock(url, study_name), warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        rdb = given if given is not None else optuna.storages.RDBStorage(
            url, heartbeat_interval=heartbeat_interval, grace_period=grace_period,
            engine_kwargs=_engine_kwargs(url))
        handle = StudyHandle(study=None, storage=rdb, url=url, seed=seed,  # type: ignore[arg-type]
                             n_startup_trials=n_startup_trials)
        handle.study = optuna.create_study(
            storage=rdb, study_name=study_name, direction="maximize", load_if_exists=True,
            sampler=handle.new_sampler(0),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=pruner_startup_trials,
                                               n_warmup_steps=pruner_warmup_steps))
        if fingerprint is not None:
            stored = handle.study.user_attrs.get("fingerprint")
            if stored is None:
                handle.study.set_user_attr("fingerprint", fingerprint)
            elif stored != fingerprint:
                raise TuningConfigError(
                    f"study {study_name!r} in {url.split('@')[-1]} was run with other settings "
                    f"or data (fingerprint {stored} != {fingerprint}); its trials are not "
                    f"comparable: choose another tuning.study_name or delete the study")
    return handle


def _engine_kwargs(url: str) -> dict[str, Any]:
    if url.startswith("sqlite:"):
        # several local worker processes on one file: wait for the write lock instead of failing
        return {"connect_args": {"timeout": 60}}
    return {"pool_pre_ping": True}


def count_trials(handle: StudyHandle, states: tuple[TrialState, ...]) -> int:
    """Count the study's trials in ``states``, read from the database (not a cache)."""
    return len(handle.storage.get_all_trials(handle.study._study_id, deepcopy=False,
                                             states=states))


@contextlib.contextmanager
def claim_lock(url: str, study_name: str) -> Iterator[None]:
    """A lock shared by every worker of ``study_name`` on this storage (see module doc)."""
    if on_dask(url):  # the study lives on the Dask scheduler: a Dask lock
        from distributed import Lock

        with Lock(f"hilbert-optuna-{study_name}"):
            yield
        return
    key = int.from_bytes(hashlib.blake2b(f"hilbert-optuna:{study_name}".encode(),
                                         digest_size=8).digest(), "big", signed=True)
    backend = url.split(":", 1)[0].split("+", 1)[0]
    if backend in ("postgresql", "postgres", "mysql", "mariadb"):
        import sqlalchemy
        from sqlalchemy.pool import NullPool

        engine = sqlalchemy.create_engine(url, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                if backend.startswith("postgres"):
                    conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
                    conn.commit()
                    try:
                        yield
                    finally:
                        conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                        conn.commit()
                else:
                    name = f"hilbert-optuna-{key & 0xFFFFFFFF:08x}"
                    conn.execute(sqlalchemy.text("SELECT GET_LOCK(:n, -1)"), {"n": name})
                    try:
                        yield
                    finally:
                        conn.execute(sqlalchemy.text("SELECT RELEASE_LOCK(:n)"), {"n": name})
        finally:
            engine.dispose()
        return
    path = sqlite_path(url) if backend == "sqlite" else None
    if path is not None:
        lock_file = path.with_name(path.name + ".lock")
        with open(lock_file, "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return
    if backend != "sqlite":
        log.warning("no cross-process lock for storage backend %r: concurrent workers may run "
                    "slightly more than n_trials trials", backend)
    with _PROCESS_LOCK:
        yield


_PROCESS_LOCK = threading.Lock()


@contextlib.contextmanager
def heartbeat(storage: optuna.storages.RDBStorage, trial_id: int, interval: int) -> Iterator[None]:
    """Record the trial's heartbeat every ``interval`` seconds in a thread while the body runs
    (nothing for a storage without heartbeats, e.g. DaskStorage)."""
    if not hasattr(storage, "record_heartbeat"):
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval):
            try:
                storage.record_heartbeat(trial_id)
            except Exception as exc:  # a missed beat is not fatal; the next one may succeed
                log.warning("heartbeat of trial id %s failed: %s", trial_id, exc)

    thread = threading.Thread(target=beat, name=f"optuna-heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def fail_stale(handle: StudyHandle) -> list[int]:
    """Fail RUNNING trials whose heartbeat is older than the grace period; return their numbers.

    On a Dask-scheduler storage (no heartbeats) a RUNNING trial is stale when the Dask worker
    that claimed it (user attribute ``dask_worker``) is no longer connected.
    """
    if on_dask(handle.url):
        return _fail_lost_dask_trials(handle)
    before = {t.number for t in handle.storage.get_all_trials(
        handle.study._study_id, deepcopy=False, states=(TrialState.RUNNING,))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(handle.study)
    after = {t.number for t in handle.storage.get_all_trials(
        handle.study._study_id, deepcopy=False, states=(TrialState.RUNNING,))}
    failed = sorted(before - after - _finished_numbers(handle, before))
    for n in failed:
        log.warning("trial %d was RUNNING with a stale heartbeat (its worker died): marked FAIL, "
                    "its slot is redone", n)
    return failed


def _fail_lost_dask_trials(handle: StudyHandle) -> list[int]:
    from distributed import get_client

    live = set(get_client().scheduler_info().get("workers", {}))
    failed = []
    for t in handle.storage.get_all_trials(handle.study._study_id, deepcopy=False,
                                           states=(TrialState.RUNNING,)):
        owner = t.user_attrs.get("dask_worker")
        if owner is not None and owner not in live:
            handle.storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            failed.append(t.number)
            log.warning("trial %d was RUNNING on Dask worker %s, which is gone: marked FAIL, its "
                        "slot is redone", t.number, owner)
    return failed


def _dask_worker_address() -> str | None:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return None


def _finished_numbers(handle: StudyHandle, numbers: set[int]) -> set[int]:
    done = handle.storage.get_all_trials(handle.study._study_id, deepcopy=False, states=COUNTED)
    return {t.number for t in done if t.number in numbers}


def check_budget(n_trials: Any, timeout: Any) -> None:
    """``tuning.n_trials`` (an integer >= 1) and ``tuning.timeout`` (seconds > 0 or None)."""
    if not int_at_least(n_trials, 1):
        raise TuningConfigError(f"tuning.n_trials must be an integer >= 1, got {n_trials!r}")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float)
                                or timeout <= 0):
        raise TuningConfigError(f"tuning.timeout must be a number of seconds > 0 or null, "
                                f"got {timeout!r}")


def run_worker(handle: StudyHandle, objective: Callable[[optuna.Trial], float], *,
               n_trials: int, timeout: float | None = None, progress: bool = True
               ) -> WorkerResult:
    """Run trials until the study holds ``n_trials`` COMPLETE+PRUNED trials or ``timeout``.

    ``objective(trial)`` returns the value to maximise or raises ``optuna.TrialPruned``. Any
    other exception marks the trial FAIL and is re-raised (a bug or bad data must not be turned
    into a silently skipped trial).
    """
    check_budget(n_trials, timeout)
    from tqdm.auto import tqdm

    study, storage = handle.study, handle.storage
    interval = (storage.get_heartbeat_interval()
                if hasattr(storage, "get_heartbeat_interval") else None) or 30
    result = WorkerResult()
    start = time.monotonic()
    name = study.study_name
    with tqdm(total=n_trials, initial=min(count_trials(handle, COUNTED), n_trials),
              desc=f"optuna {name}", unit="trial", disable=not progress) as bar:
        while True:
            if timeout is not None and time.monotonic() - start >= timeout:
                result.stop_reason = "timeout"
                break
            fail_stale(handle)
            with claim_lock(handle.url, name):
                if count_trials(handle, COUNTED) >= n_trials:
                    result.stop_reason = "n_trials reached"
                    break
                wait = count_trials(handle, CLAIMED) >= n_trials
                if not wait:
                    number = len(storage.get_all_trials(study._study_id, deepcopy=False))
                    study.sampler = handle.new_sampler(number)
                    with warnings.catch_warnings():
                        # we run the heartbeat ourselves (see module doc), not via optimize()
                        warnings.filterwarnings("ignore", message="Heartbeat of storage")
                        trial = study.ask()
                    if hasattr(storage, "record_heartbeat"):
                        storage.record_heartbeat(trial._trial_id)
                    elif on_dask(handle.url):
                        trial.set_user_attr("dask_worker", _dask_worker_address())
            if wait:
                # the remaining slots are held by RUNNING trials: of live workers (they will
                # finish) or of dead ones (failed by fail_stale after the grace period, and
                # their slots redone here)
                time.sleep(min(interval, 5))
                continue
            with heartbeat(storage, trial._trial_id, interval):
                try:
                    value = objective(trial)
                except optuna.TrialPruned:
                    study.tell(trial, state=TrialState.PRUNED)
                    result.pruned.append(trial.number)
                except BaseException:
                    study.tell(trial, state=TrialState.FAIL)
                    raise
                else:
                    study.tell(trial, float(value))
                    result.completed.append(trial.number)
            bar.n = min(count_trials(handle, COUNTED), n_trials)
            bar.set_postfix(best=_best_value(study))
            bar.refresh()
    result.study_finished = count_trials(handle, COUNTED)
    log.info("optuna worker on study %r stopped (%s): this worker finished %d trials, the study "
             "has %d of %d", name, result.stop_reason, len(result.completed) + len(result.pruned),
             result.study_finished, n_trials)
    return result


def _best_value(study: optuna.Study) -> str:
    try:
        return f"{study.best_value:.4f}"
    except ValueError:
        return "-"
