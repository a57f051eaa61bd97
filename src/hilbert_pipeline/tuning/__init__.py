"""Optuna hyper-parameter tuning of HILBERT (docs/tuning.md); pure library, no Kedro import.

* :mod:`.space` -- the search space and its mapping to HilbertConfig / training keys;
* :mod:`.objective` -- mean inner-CV macro-F1 on the training documents, with pruning;
* :mod:`.study` -- storage (SQLite / PostgreSQL), resumption, the exact-budget worker loop;
* :mod:`.report` -- ``best_params.json`` content, trials table, HTML plots.

See ``docs/tuning.md``.
"""

from .objective import TuningDataError, make_objective, tuning_documents
from .report import (
    NoCompletedTrialError,
    best_params,
    plot_history_html,
    plot_importance_html,
    trials_table,
)
from .space import SearchSpace, SearchSpaceError, split_values
from .study import (
    DEFAULT_STORAGE,
    StudyHandle,
    TuningConfigError,
    WorkerResult,
    count_trials,
    open_study,
    run_worker,
)

__all__ = [
    "DEFAULT_STORAGE",
    "NoCompletedTrialError",
    "SearchSpace",
    "SearchSpaceError",
    "StudyHandle",
    "TuningConfigError",
    "TuningDataError",
    "WorkerResult",
    "best_params",
    "count_trials",
    "make_objective",
    "open_study",
    "plot_history_html",
    "plot_importance_html",
    "run_worker",
    "split_values",
    "trials_table",
    "tuning_documents",
]
