"""One tuning worker end to end: parameters -> documents -> study -> outputs (no Kedro import).

The ``tuning`` Kedro node calls :func:`run_tuning`; so could any script. Several processes
(on one machine with SQLite, on several with PostgreSQL) may run it at the same time against one
study: each runs trials until the study holds ``n_trials`` finished trials, then writes the
outputs from the *whole* study, so the last worker to finish writes the final ones.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from hilbert_pipeline.documents import DocumentSet
from hilbert_pipeline.training.params import resolve_training_settings
from hilbert_pipeline.training.trainer import TrainingParams

from ..utils import reject_unknown_keys
from .objective import make_objective
from .report import (
    OBJECTIVE,
    best_params,
    plot_history_html,
    plot_importance_html,
    trials_table,
)
from .space import SearchSpace
from .study import (
    DASK_STORAGE,
    DEFAULT_STORAGE,
    HEARTBEAT_INTERVAL,
    N_STARTUP_TRIALS,
    PRUNER_STARTUP_TRIALS,
    PRUNER_WARMUP_STEPS,
    TuningConfigError,
    WorkerResult,
    check_budget,
    open_study,
    run_worker,
    sqlite_path,
)

log = logging.getLogger(__name__)

KEYS = {"seed", "study_name", "name_with_fingerprint", "storage", "n_trials", "timeout",
        "n_folds", "n_startup_trials", "pruner", "heartbeat_interval", "grace_period", "progress",
        "optim_overrides", "search_space"}
PRUNER_KEYS = {"startup_trials", "warmup_steps"}


@dataclass
class TuningSettings:
    seed: int
    study_name: str
    name_with_fingerprint: bool
    storage: Any  # a SQLAlchemy URL, or a DaskStorage object (tuning.storage: dask)
    n_trials: int
    timeout: float | None
    n_folds: int
    n_startup_trials: int
    pruner_startup_trials: int
    pruner_warmup_steps: int
    heartbeat_interval: int
    grace_period: int | None
    progress: bool
    optim_overrides: dict[str, Any]
    space: SearchSpace


def parse_tuning_params(params: Mapping[str, Any]) -> TuningSettings:
    """Validate the ``tuning:`` parameter block (unknown keys are errors, not ignored)."""
    if not isinstance(params, Mapping):
        raise TuningConfigError(f"parameters 'tuning' must be a mapping, got "
                                f"{type(params).__name__}")
    reject_unknown_keys("parameters 'tuning'", params, KEYS, TuningConfigError)
    missing = sorted({"seed", "n_trials", "search_space"} - set(params))
    if missing:
        raise TuningConfigError(f"parameters 'tuning' needs {missing}")
    pruner = dict(params.get("pruner") or {})
    reject_unknown_keys("tuning.pruner", pruner, PRUNER_KEYS, TuningConfigError)
    overrides = dict(params.get("optim_overrides") or {})
    fields = set(TrainingParams.__dataclass_fields__) - {"device", "progress"}
    reject_unknown_keys("tuning.optim_overrides", overrides, fields, TuningConfigError,
                        "TrainingParams fields")
    seed = params["seed"]
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TuningConfigError(f"tuning.seed must be an integer, got {seed!r}")
    check_budget(params["n_trials"], params.get("timeout"))
    return TuningSettings(
        seed=seed,
        study_name=params.get("study_name") or "hilbert",
        name_with_fingerprint=bool(params.get("name_with_fingerprint", True)),
        storage=params.get("storage") or DEFAULT_STORAGE,
        n_trials=params["n_trials"],
        timeout=params.get("timeout"),
        n_folds=params.get("n_folds", 3),
        n_startup_trials=params.get("n_startup_trials", N_STARTUP_TRIALS),
        pruner_startup_trials=pruner.get("startup_trials", PRUNER_STARTUP_TRIALS),
        pruner_warmup_steps=pruner.get("warmup_steps", PRUNER_WARMUP_STEPS),
        heartbeat_interval=params.get("heartbeat_interval", HEARTBEAT_INTERVAL),
        grace_period=params.get("grace_period"),
        progress=bool(params.get("progress", True)),
        optim_overrides=overrides,
        space=SearchSpace.from_dict(params["search_space"]),
    )


@dataclass
class TuningOutputs:
    best_params: dict[str, Any]  # flat: HilbertConfig / TrainingParams field -> value
    summary: dict[str, Any]
    trials: pd.DataFrame
    history_html: str
    importance_html: str


@dataclass
class _Prepared:
    ts: TuningSettings
    settings: Any
    optim: dict[str, Any]
    docs: Any
    label_report: dict[str, Any]
    fingerprint: str
    study_name: str


def _prepare(docs: DocumentSet, label_report: Mapping[str, Any], tuning, training
             ) -> _Prepared:
    ts = parse_tuning_params(tuning)
    settings = resolve_training_settings({**dict(training), "use_tuned": False,
                                          "progress": False})
    optim = {**settings.training_params, **ts.optim_overrides}
    fingerprint = study_fingerprint(tuning, settings.model_params, optim, docs)
    study_name = (f"{ts.study_name}-{fingerprint}" if ts.name_with_fingerprint
                  else ts.study_name)
    return _Prepared(ts, settings, optim, docs, dict(label_report), fingerprint, study_name)


def _open(p: _Prepared):
    ts = p.ts
    return open_study(ts.storage, p.study_name, seed=ts.seed, fingerprint=p.fingerprint,
                      n_startup_trials=ts.n_startup_trials,
                      pruner_startup_trials=ts.pruner_startup_trials,
                      pruner_warmup_steps=ts.pruner_warmup_steps,
                      heartbeat_interval=ts.heartbeat_interval, grace_period=ts.grace_period)


def _work(p: _Prepared, handle) -> WorkerResult:
    objective = make_objective(p.docs, p.ts.space, p.settings.model_params, p.optim,
                               n_folds=p.ts.n_folds, seed=p.ts.seed)
    return run_worker(handle, objective, n_trials=p.ts.n_trials, timeout=p.ts.timeout,
                      progress=p.ts.progress)


def tuning_worker(docs: DocumentSet, label_report: Mapping[str, Any],
                  tuning: Mapping[str, Any], training: Mapping[str, Any]) -> WorkerResult:
    """One study worker (a Dask task on a cluster): trials until the study's budget is spent."""
    p = _prepare(docs, label_report, tuning, training)
    return _work(p, _open(p))


def _gather_with_progress(client, futures, handle, ts: TuningSettings) -> list[WorkerResult]:
    """Wait for the cluster's study workers, with a bar over the study's finished trials (the
    workers' own bars are off: they would print on the workers' machines)."""
    import time

    from tqdm.auto import tqdm

    from .study import COUNTED, count_trials

    with tqdm(total=ts.n_trials, desc=f"optuna {handle.study.study_name} (cluster)",
              unit="trial", disable=not ts.progress) as bar:
        while True:
            done = all(f.done() for f in futures)
            bar.n = min(count_trials(handle, COUNTED), ts.n_trials)
            bar.refresh()
            if done:
                break
            time.sleep(1)
    return client.gather(futures)


def absolute_storage(url: str) -> str:
    """A relative SQLite URL made absolute, so that worker processes started elsewhere (another
    working directory) open the same file."""
    path = sqlite_path(url)
    if path is None or path.is_absolute():
        return url
    query = url.split("?", 1)[1] if "?" in url else ""
    return f"sqlite:///{path.resolve()}" + (f"?{query}" if query else "")


def run_tuning(docs: DocumentSet, label_report: Mapping[str, Any],
               tuning: Mapping[str, Any], training: Mapping[str, Any],
               client=None) -> TuningOutputs:
    """Run this worker's share of the study and build the outputs from the whole study.

    ``training`` is the ``training:`` parameter block: its ``model`` / ``optim`` settings are the
    base every trial starts from (``use_tuned`` is ignored here -- tuning never starts from a
    previous tuning result), ``tuning.optim_overrides`` changes optimisation settings for the
    trials only (e.g. fewer epochs). ``docs`` and ``label_report``: the labelled training-split
    documents, the training pipeline's ``training_documents`` / ``training_labels`` (the class
    definition is the evaluation's, as for training).

    ``client`` (a ``distributed.Client``): one study worker per Dask worker instead of this
    process, all sharing the study's storage (SQLite on a file system they all see, or a
    database server such as PostgreSQL).
    """
    storage = dict(tuning).get("storage") or DEFAULT_STORAGE
    if storage == DASK_STORAGE:
        if client is None:
            raise TuningConfigError("tuning.storage: dask keeps the study on the Dask scheduler "
                                    "and needs a cluster (cluster.address: local, tcp://... or "
                                    "slurm); without one use a SQLite or PostgreSQL URL")
        from optuna_integration import DaskStorage

        storage = DaskStorage(client=client)  # lives on the scheduler as long as the cluster
    elif isinstance(storage, str):
        storage = absolute_storage(storage)
    tuning = {**dict(tuning), "storage": storage}
    p = _prepare(docs, label_report, tuning, training)
    ts, docs, label_report, fingerprint, study_name = (p.ts, p.docs, p.label_report,
                                                       p.fingerprint, p.study_name)
    settings, optim = p.settings, p.optim
    handle = _open(p)  # created here first, so that workers only ever load it
    log.info("tuning on %d training documents %s (%d inner folds), study %r in %s",
             len(docs), label_report["class_counts"], ts.n_folds, study_name,
             _safe_url(ts.storage))
    if client is None:
        worker = _work(p, handle)
    else:
        n = max(1, len(client.scheduler_info().get("workers", {})))
        log.info("tuning on the Dask cluster: %d study workers", n)
        shared = client.scatter(docs, broadcast=True)
        futures = [client.submit(tuning_worker, shared, dict(label_report),
                                 {**tuning, "progress": False}, dict(training), pure=False)
                   for _ in range(n)]
        results = _gather_with_progress(client, futures, handle, ts)
        worker = WorkerResult(
            completed=sorted(t for r in results for t in r.completed),
            pruned=sorted(t for r in results for t in r.pruned),
            stop_reason="; ".join(sorted({r.stop_reason for r in results})))
        handle = _open(p)
    study = handle.study
    best = best_params(study, ts.space)
    flat = {**best["model"], **best["training"]}
    trials = trials_table(study)
    summary = {
        "objective": OBJECTIVE,
        "study_name": study.study_name,
        "fingerprint": fingerprint,
        "storage": _safe_url(ts.storage),
        "best_trial": best["best_trial"],
        "best_value": best["best_value"],
        "best_fold_macro_f1": best["fold_macro_f1"],
        "best_params": flat,
        "n_trials_budget": ts.n_trials,
        "trial_states": trials["state"].value_counts().to_dict(),
        "this_worker": {"completed": worker.completed, "pruned": worker.pruned,
                        "stop_reason": worker.stop_reason},
        "n_documents": len(docs),
        "classes": label_report["class_counts"],
        "excluded": label_report["excluded"],
        "n_folds": ts.n_folds,
        "seed": ts.seed,
        "base_model": settings.model_params,
        "base_optim": optim,
    }
    log.info("study %r: best trial %d, mean inner-CV macro-F1 %.4f, params %s",
             study.study_name, best["best_trial"], best["best_value"], flat)
    return TuningOutputs(best_params=flat, summary=summary, trials=trials,
                         history_html=plot_history_html(study),
                         importance_html=plot_importance_html(study))


def study_fingerprint(tuning: Mapping[str, Any], model_params: Mapping[str, Any],
                      optim: Mapping[str, Any], docs: Any) -> str:
    """10 hex digits identifying what a trial measures.

    Covers the search space, the base model and optimisation settings, the inner folds and seed,
    the documents with their labels and the encoders that made the features -- not the budget
    (``n_trials``, ``timeout``), the storage, the pruner or the progress bar, so a study can be
    resumed with a larger budget but a changed objective starts a new study (see module doc of
    :mod:`.study` and docs/tuning.md).
    """
    import hashlib
    import json

    ignored = {"device", "progress", "eval_batch_size"}
    payload = {
        "search_space": tuning.get("search_space"),
        "n_folds": tuning.get("n_folds", 3),
        "seed": tuning.get("seed"),
        "model": dict(model_params),
        "optim": {k: v for k, v in optim.items() if k not in ignored},
        "documents": list(docs.doc_ids),
        "labels": [docs.label_names[k] for k in docs.labels],
        "encoders": docs.meta,
    }
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:10]


def _safe_url(url) -> str:
    """The storage URL without a password (it goes to logs and reports)."""
    if not isinstance(url, str):
        return "dask (the study lives on the Dask scheduler)"
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1] if "@" in url else url
