"""Run every method on the identical folds (the reports: :mod:`.report`, the figures: :mod:`.plots`).

Seeds: the fold ``(repeat r, fold f)`` uses seed ``seed + 1000 * r + f`` for *every* method, so
methods also share the inner validation split and the initial random state of a fold; only the
method itself differs.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed, parallel_config
from tqdm.auto import tqdm

from hilbert_pipeline.cpu_kernels import network_numerics
from hilbert_pipeline.documents import DocumentSet
from hilbert_pipeline.evaluation.methods import METHODS, MethodError, resolve_methods, run_method
from hilbert_pipeline.folds import iter_folds
from hilbert_pipeline.metrics import fold_metrics
from hilbert_pipeline.model import HilbertConfig, PredictionForm
from hilbert_pipeline.model.config import members_apply
from hilbert_pipeline.training.params import route
from hilbert_pipeline.training.trainer import torch_threads

log = logging.getLogger(__name__)

@dataclass
class EvaluationRun:
    predictions: pd.DataFrame  # method, repeat, fold, doc_id, y_true, y_pred, p_<class>...
    fold_metrics: pd.DataFrame  # method, repeat, fold, n_train, n_test, metrics, seconds
    gate_usage: pd.DataFrame  # method, repeat, fold, expert, mean_weight, top1_share
    mi: pd.DataFrame  # method, repeat, fold, mi_audio, mi_text (test documents)
    label_names: list[str]


def fold_seed(seed: int, repeat: int, fold: int) -> int:
    return int(seed) + 1000 * int(repeat) + int(fold)


def fit_context(training_params: Mapping[str, Any]) -> contextlib.ExitStack:
    """What every (method, fold) fit of an evaluation runs under: the training thread count,
    the network's CPU kernels, and joblib's sequential backend.

    Joblib calls inside the fit (scikit-learn's grid search of a regression's C) run in this
    thread, one after the other: on a Dask worker they would otherwise go to the cluster through
    joblib's Dask backend, and while the fit waits for them its thread leaves the worker's pool,
    so that the worker starts another fit beside it in the same process; two fits at once share
    the process's random state (``seed_everything``) and torch's switches, and the numbers
    depend on the timing (measured in two CI runs: a fold's probabilities moved by 0.0022 and
    by 0.0011)."""
    stack = contextlib.ExitStack()
    stack.enter_context(parallel_config(backend="sequential"))
    stack.enter_context(torch_threads(training_params.get("num_threads")))
    stack.enter_context(network_numerics())
    return stack


def _task(spec, train: DocumentSet, test: DocumentSet, model_params, training_params, seed,
          overrides):
    """One (method, fold) fit in a joblib worker (module level so that it can be pickled)."""
    with fit_context(training_params):
        return run_method(spec, train, test, model_params, training_params, seed, overrides)


#: the fields that say whether and how a linear member joins the network, and whether the network
#: has unimodal members
_WIDE_FIELDS = ("wide_path", "wide_init", "wide_trainable", "wide_combine", "wide_weight")
_VARIANT_FIELDS = (*_WIDE_FIELDS, "unimodal_members")


def shared_fits(specs, overrides: Mapping[str, Any], model_params: Mapping[str, Any]
                ) -> dict[str, tuple[tuple[str, str], ...]]:
    """``{fitted method: ((derived method, view), ...)}``: methods whose predictions another
    method's fit already makes, so that one fit serves them (``MethodResult.info["views"]``).

    - view ``"network"``: a ``mixture`` trains its network exactly as a method that differs
      from it only by having no linear member (e.g. ``with_wide`` and the default
      ``hilbert``);
    - view ``"half"``: a ``mixture`` trains its network and members exactly as a mixture that
      differs from it only by the linear member's fixed weight 0.5 (the default ``hilbert``,
      weight by inner CV, and ``with_wide``): the view averages the two equally;
    - view ``"fused"``: a network with unimodal members trains its fused network exactly as a
      method that differs from it only by having none and no linear member (e.g. ``hilbert``
      and ``no_members``; or ``with_wide`` and ``no_members``);
    - view ``"fused_linear"``: a mixture with unimodal members trains its fused network, and
      (in its inner CV) the fused networks of the inner folds, exactly as the same mixture
      without members (e.g. the default ``hilbert`` and ``no_members``): the view averages
      the fused network with the linear member, at the weight the mixture without members
      would choose (the fit's ``members["fused_linear"]``) or its fixed weight.

    Each is a tested property (same seed, same weights). Empty when no such pair is listed."""

    fields = HilbertConfig.__dataclass_fields__
    effective = {}
    for spec in specs:
        if spec.kind != "neural":
            continue
        cfg_over, tr_over, _ = route(overrides.get(spec.name))
        eff = {k: f.default for k, f in fields.items() if k in _VARIANT_FIELDS or k ==
               "modalities"}
        eff.update({**dict(model_params), **dict(spec.config), **cfg_over})
        form = PredictionForm.of(eff["wide_path"], eff["wide_combine"]).name
        members = members_apply(eff["unimodal_members"], eff["modalities"], form)
        network = {k: v for k, v in eff.items() if k not in _VARIANT_FIELDS}
        wide = {k: eff[k] for k in _WIDE_FIELDS}
        effective[spec.name] = (form, members, repr(sorted(network.items())),
                                repr(sorted(tr_over.items())), wide)

    def view(source, target) -> str | None:
        (f1, m1, n1, t1, w1), (f2, m2, n2, t2, w2) = source, target
        if (n1, t1) != (n2, t2):
            return None
        if f1 == f2 == "mixture" and m1 == m2 and w2["wide_weight"] == 0.5 \
                and {k: v for k, v in w1.items() if k != "wide_weight"} \
                == {k: v for k, v in w2.items() if k != "wide_weight"}:
            return "half"
        if f1 == f2 == "mixture" and m1 and not m2 and w1 == w2:
            return "fused_linear"
        if f2 != "deep":
            return None
        if f1 == "mixture" and m1 == m2:
            return "network"
        if f1 in ("mixture", "deep") and m1 and not m2:
            return "fused"
        return None

    shared: dict[str, tuple[tuple[str, str], ...]] = {}
    taken: set[str] = set()
    # the richest fits first (a mixture with members serves the most views)
    order = sorted(effective, key=lambda n: (effective[n][0] != "mixture", not effective[n][1],
                                             effective[n][4]["wide_weight"] != "auto"))
    for name in order:
        if name in taken:
            continue
        derived = tuple((other, v) for other in effective if other != name and other not in taken
                        and other not in shared
                        and (v := view(effective[name], effective[other])) is not None)
        if derived:
            shared[name] = derived
            taken.update(o for o, _ in derived)
    return shared


def run_evaluation(docs: DocumentSet, folds: pd.DataFrame, methods: Sequence[str],
                   model_params: Mapping[str, Any], training_params: Mapping[str, Any],
                   seed: int, method_overrides: Mapping[str, Mapping[str, Any]] | None = None,
                   progress: bool = False, n_jobs: int = 1, client=None) -> EvaluationRun:
    """Fit and score every method on every fold of ``folds``.

    ``n_jobs > 1`` runs the (method, fold) fits in that many worker processes (joblib/loky);
    ``client`` (a ``distributed.Client``) runs them on its Dask cluster instead, through joblib's
    Dask backend (``n_jobs`` is then ignored).
    Each fit is seeded on its own, so results do not depend on ``n_jobs`` as long as the torch
    thread count is the same (set ``num_threads`` in the training parameters: workers and the
    main process then use the same count).
    """
    specs = resolve_methods(list(methods))
    overrides = dict(method_overrides or {})
    stray = sorted(set(overrides) - set(METHODS))
    if stray:
        raise MethodError(f"method_overrides for unknown methods {stray}")
    fold_list = list(iter_folds(folds, docs))
    shared = shared_fits(specs, overrides, model_params)
    derived = {name for views in shared.values() for name, _ in views}
    tasks = [(spec, f) for f in fold_list for spec in specs if spec.name not in derived]
    bar = None
    if progress:

        bar = tqdm(total=len(tasks), desc="evaluation", unit="fit")
    pred_rows, metric_rows, gate_rows, mi_rows = [], [], [], []
    names = docs.label_names
    calls = [(spec, docs.subset(tr), docs.subset(te), dict(model_params),
              dict(training_params), fold_seed(seed, r, f), overrides.get(spec.name))
             for spec, (r, f, tr, te) in tasks]

    def record(name: str, r: int, f: int, train: DocumentSet, test: DocumentSet, res) -> float:
        m = fold_metrics(test.labels, res.proba)
        metric_rows.append({"method": name, "repeat": r, "fold": f,
                            "n_train": len(train), "n_test": len(test), **m,
                            "best_epoch": res.best_epoch,
                            "refit_epochs": res.info.get("refit_epochs"),
                            "form": res.info.get("form"),
                            "logreg_C": res.info.get("C"), "seconds": res.seconds,
                            **{f"weight_{k}": v
                               for k, v in (res.info.get("members") or {}).items()}})
        pred = pd.DataFrame({"method": name, "repeat": r, "fold": f,
                             "doc_id": test.doc_ids,
                             "y_true": [names[k] for k in test.labels],
                             "y_pred": [names[k] for k in res.proba.argmax(axis=1)]})
        for k, c in enumerate(names):
            pred[f"p_{c}"] = res.proba[:, k]
        pred_rows.append(pred)
        if res.gate is not None:
            top1 = np.bincount(res.gate.argmax(axis=1), minlength=res.gate.shape[1])
            for e in range(res.gate.shape[1]):
                gate_rows.append({"method": name, "repeat": r, "fold": f, "expert": e,
                                  "mean_weight": float(res.gate[:, e].mean()),
                                  "top1_share": float(top1[e] / len(test))})
        if res.mi:
            mi_rows.append({"method": name, "repeat": r, "fold": f,
                            "mi_audio": res.mi.get("mi_audio"),
                            "mi_text": res.mi.get("mi_text")})
        log.debug("%s repeat %d fold %d: macro-F1 %.3f (%.1fs)", name, r, f, m["macro_f1"],
                  res.seconds)
        return m["macro_f1"]

    stack = contextlib.ExitStack()
    if n_jobs == 1 and client is None:
        results = (run_method(*c) for c in calls)
    else:

        if client is not None:
            stack.enter_context(parallel_config(backend="dask", n_jobs=-1))
        results = Parallel(n_jobs=-1 if client is not None else n_jobs,
                           return_as="generator")(delayed(_task)(*c) for c in calls)
    # one thread count for the whole in-process loop (fit, predict and MI terms alike)
    stack.enter_context(torch_threads(training_params.get("num_threads")))
    stack.enter_context(network_numerics())
    if bar is not None:
        stack.callback(bar.close)
    with stack:
        for (spec, (r, f, _, _)), (_, train, test, *_rest), res in zip(tasks, calls, results,
                                                                        strict=True):
            f1 = record(spec.name, r, f, train, test, res)
            for name, view in shared.get(spec.name, ()):
                record(name, r, f, train, test, res.info["views"][view])
            if bar is not None:
                bar.update(1)
                bar.set_postfix(method=spec.name, fold=f"{r}.{f}", macro_f1=f"{f1:.3f}")
    order = {s.name: i for i, s in enumerate(specs)}
    metric_df = pd.DataFrame(metric_rows)
    if shared and len(metric_df):  # rows in the order of the method list, as without sharing
        metric_df = metric_df.sort_values(
            ["repeat", "fold", "method"], key=lambda c: c.map(order) if c.name == "method"
            else c, kind="stable").reset_index(drop=True)
    return EvaluationRun(
        predictions=pd.concat(pred_rows, ignore_index=True),
        fold_metrics=metric_df,
        gate_usage=pd.DataFrame(gate_rows, columns=["method", "repeat", "fold", "expert",
                                                    "mean_weight", "top1_share"]),
        mi=pd.DataFrame(mi_rows, columns=["method", "repeat", "fold", "mi_audio", "mi_text"]),
        label_names=list(names),
    )
