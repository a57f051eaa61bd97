"""The tuning objective: mean inner-cross-validation macro-F1 on the training documents only.

Which documents (the guarantee that tuning never sees evaluation test documents)
    Tuning uses the labelled documents whose ``split`` is ``train``
    (``build_document_set(..., only_split="train")``). When the corpus has a ``split`` column,
    the evaluation pipeline tests on exactly the ``test`` documents, which tuning never loads, so
    the evaluation numbers after tuning are clean. When the corpus has *no* split (the demo
    corpus), the evaluation uses repeated k-fold over all labelled documents -- the same
    documents tuning used -- and the reported numbers after ``training.use_tuned: true`` are
    then optimistically biased by the hyper-parameter choice. We chose this over nested tuning
    inside every evaluation fold because a study per outer fold multiplies the (already largest)
    cost of the project by the number of folds; ``docs/tuning.md`` says how to get clean
    numbers (give the corpus a ``split`` column).

How one trial is scored
    The tuning documents are split into ``n_folds`` stratified folds (grouped when the corpus
    has groups, the same splitter as the evaluation: :func:`folds.make_folds` with one
    repeat and the tuning seed). For each fold a model is trained on the other folds -- with
    early stopping on an inner stratified validation part of *those* documents
    (``training.val_fraction``) -- and scored (macro-F1) on the held-out fold. The objective is
    the mean over folds. The held-out fold is never used for early stopping, so the selection
    of the best epoch does not inflate the score.

Pruning
    After every epoch the inner-validation macro-F1 is reported to Optuna at step
    ``fold * epochs + epoch`` (so the median pruner compares the same fold and epoch across
    trials) and ``trial.should_prune()`` raises ``optuna.TrialPruned`` through the trainer's
    ``on_epoch_end`` hook.

Seeds
    Every trial trains fold ``f`` with seed ``seed + f``: trials differ by their hyper-parameters,
    not by their random initialisation, so the comparison between trials is not noise-driven.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from hilbert_pipeline.documents import DocumentSet
from hilbert_pipeline.errors import UserError
from hilbert_pipeline.folds import iter_folds, make_folds
from hilbert_pipeline.metrics import macro_f1
from hilbert_pipeline.training.params import DATA_FIELDS, build_config
from hilbert_pipeline.training.trainer import TrainingParams, fit, predict

from ..model import HilbertConfig
from .space import SearchSpace, split_values

log = logging.getLogger(__name__)


class TuningDataError(UserError):
    """The tuning documents cannot support the requested inner cross-validation."""


def tuning_documents(docs: DocumentSet) -> DocumentSet:
    """Drop the ``split`` marks of the (train-only) tuning documents.

    ``docs`` must already hold only training documents (``only_split="train"``); a ``test``
    document here is an error, since it would leak evaluation data into tuning.
    """
    if docs.splits is not None:
        leaked = [d for d, s in zip(docs.doc_ids, docs.splits, strict=True) if s != "train"]
        if leaked:
            raise TuningDataError(f"tuning must only see training documents; got documents with "
                                  f"split != 'train': {leaked[:20]}")
    return dataclasses.replace(docs, splits=None)


def base_config(docs: DocumentSet, model_params: Mapping[str, Any], space: SearchSpace
                ) -> dict[str, Any]:
    """HilbertConfig fields shared by every trial: the data's widths/classes + ``model_params``.

    Validated once here, combined with one point of the search space, so a wrong base parameter
    is reported before any trial runs (not as a failed first trial).
    """
    clash = [k for k in DATA_FIELDS if k in (model_params or {})]
    if clash:
        raise TuningDataError(f"model parameters must not set {clash}: they come from the data")
    cfg = {"audio_dim": docs.audio_dim, "text_dim": docs.text_dim, "n_classes": docs.n_classes,
           **dict(model_params or {})}
    check_space(space, cfg)
    model_point, _ = split_values(space.first_point())
    build_config(docs, {**dict(model_params or {}), **model_point})  # validates one trial's
    return cfg


def check_space(space: SearchSpace, base: Mapping[str, Any]) -> None:
    """Reject widths ``d`` the base ``n_heads`` cannot divide before any trial is run."""
    n_heads = base.get("n_heads", HilbertConfig.__dataclass_fields__["n_heads"].default)
    dim = space.dim("d")
    widths = list(dim.choices) if dim.kind == "cat" else [dim.value]
    bad = [w for w in widths if w % n_heads]
    if bad:
        raise TuningDataError(f"tuning.search_space.d: widths {bad} are not divisible by the "
                              f"model's n_heads={n_heads}")


def make_objective(docs: DocumentSet, space: SearchSpace, model_params: Mapping[str, Any],
                   training_params: Mapping[str, Any], *, n_folds: int, seed: int
                   ) -> Callable[[Any], float]:
    """Build ``objective(trial) -> mean inner-CV macro-F1`` over the tuning documents ``docs``."""
    docs = tuning_documents(docs)
    if not isinstance(n_folds, int) or isinstance(n_folds, bool) or n_folds < 2:
        raise TuningDataError(f"tuning.n_folds must be an integer >= 2, got {n_folds!r}")
    base = base_config(docs, model_params, space)
    tp0 = TrainingParams.from_dict(training_params)
    folds = list(iter_folds(make_folds(docs, n_folds, 1, seed), docs))
    warn_if_nothing_to_tune(base)

    def objective(trial: Any) -> float:
        import optuna

        values = space.suggest(trial)
        model_over, train_over = split_values(values)
        cfg = HilbertConfig.from_dict({**base, **model_over})
        tp = tp0.replace(**train_over)
        trial.set_user_attr("effective", _jsonable(values))
        scores: list[float] = []
        for _, f, tr, te in folds:
            def report(epoch: int, val_f1: float | None, f: int = f) -> None:
                if val_f1 is None:
                    return
                trial.report(float(val_f1), step=f * tp.epochs + epoch)
                if trial.should_prune():
                    trial.set_user_attr("pruned_at", {"fold": f, "epoch": epoch})
                    raise optuna.TrialPruned(f"fold {f} epoch {epoch}: val macro-F1 "
                                             f"{val_f1:.4f} below the median")

            # with the default fixed schedule (no inner validation split) the pruner reads the
            # held-out fold's macro-F1 after each epoch, the trial's own objective metric; the
            # score kept is that of the trained (weight-averaged) model at the end
            held_out = docs.subset(te)
            res = fit(cfg, docs.subset(tr), None, tp, seed=seed + f, on_epoch_end=report,
                      monitor_docs=held_out)
            proba = predict(res.model, held_out, tp.eval_batch_size)
            scores.append(macro_f1(held_out.labels, proba))
            trial.set_user_attr("fold_macro_f1", scores)
        return float(np.mean(scores))

    return objective


def warn_if_nothing_to_tune(base: Mapping[str, Any]) -> None:
    """A warning when the base model predicts with its linear member alone
    (``wide_combine: wide``): no network is trained, so the searched values cannot change a
    trial's score."""
    cfg = HilbertConfig.from_dict(dict(base))
    if not cfg.prediction.trains_network:
        log.warning("training.model.wide_combine is 'wide': HILBERT predicts with the logistic "
                    "regression alone and the trials will score alike (the searched values of "
                    "the network do not change it). Set wide_combine: mixture (docs/tuning.md).")


def _jsonable(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in values.items()}
