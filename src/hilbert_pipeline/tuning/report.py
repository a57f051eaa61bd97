"""Study outputs: best parameters (for training), trials table and HTML plots.

``best_params.json`` (read by the training pipeline when ``training.use_tuned: true``, see
``training.params``) is a *flat* object whose keys are ``HilbertConfig`` or ``TrainingParams``
field names -- ``lambda_dual, lambda_cka, lambda_mi, n_experts, top_k, dropout, d, lr`` -- and
nothing else (training rejects unknown keys); the provenance (study, trial, score) goes to
``tuning_summary.json``.

The values are the *effective* ones (a switched-off loss weight is ``0.0``; ``top_k >=
n_experts`` is ``null``, the dense gate), so they can be passed to ``HilbertConfig`` as they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hilbert_pipeline.errors import UserError

from .space import SearchSpace, split_values

OBJECTIVE = "mean inner-CV macro-F1 on the training documents (higher is better)"


class NoCompletedTrialError(UserError, RuntimeError):
    """The study has no COMPLETE trial, so there is no best parameter set to write."""


def best_params(study: Any, space: SearchSpace) -> dict[str, Any]:
    """The best COMPLETE trial's effective values split into model/training keys."""
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        states = pd.Series([t.state.name for t in study.get_trials(deepcopy=False)]).value_counts()
        raise NoCompletedTrialError(
            f"study {study.study_name!r} has no COMPLETE trial (trial states: "
            f"{states.to_dict()}); run more trials or relax the pruner")
    best = study.best_trial
    model, training = split_values(space.values_from_params(best.params))
    pruned = study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))
    return {
        "model": _plain(model),
        "training": _plain(training),
        "study_name": study.study_name,
        "best_trial": best.number,
        "best_value": float(best.value),
        "fold_macro_f1": best.user_attrs.get("fold_macro_f1"),
        "n_complete": len(complete),
        "n_pruned": len(pruned),
        "objective": OBJECTIVE,
    }


def trials_table(study: Any) -> pd.DataFrame:
    """One row per trial: number, state, value, timings, raw params, effective values."""
    df = study.trials_dataframe(attrs=("number", "state", "value", "datetime_start",
                                       "datetime_complete", "duration", "params", "user_attrs"))
    if "duration" in df.columns:
        df["duration_s"] = df.pop("duration").dt.total_seconds()
    for col in list(df.columns):
        if df[col].map(lambda v: isinstance(v, dict | list)).any():
            df[col] = df[col].map(lambda v: None if v is None or (isinstance(v, float)
                                                                  and np.isnan(v)) else repr(v))
    return df


def plot_history_html(study: Any) -> str:
    """Optimisation history (value per trial and best so far) as a self-contained HTML page."""
    import optuna.visualization as vis

    return vis.plot_optimization_history(study).to_html(include_plotlyjs=True, full_html=True)


def plot_importance_html(study: Any) -> str:
    """Parameter importances (fANOVA) as HTML; a page with an explanation when impossible.

    Importances need at least two COMPLETE trials whose searched parameters vary; with fewer the
    page says so (tuning with a tiny budget is legitimate, it must not fail the run).
    """
    import optuna.visualization as vis
    from optuna.trial import TrialState

    n_complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    if n_complete < 2:
        return _message_html(f"Parameter importance needs at least 2 complete trials; study "
                             f"{study.study_name!r} has {n_complete}.")
    try:
        fig = vis.plot_param_importances(study)
    except (ValueError, RuntimeError) as exc:
        return _message_html(f"Parameter importance could not be computed for study "
                             f"{study.study_name!r} ({n_complete} complete trials): {exc}")
    return fig.to_html(include_plotlyjs=True, full_html=True)


def _message_html(text: str) -> str:
    from html import escape

    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Optuna</title></head>"
            f"<body><p>{escape(text)}</p></body></html>\n")


def write_text(path: str | Path, text: str) -> None:
    from ..utils import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in d.items()}
