"""Nodes of the ``training`` pipeline: wiring only; the logic is in ``hilbert_pipeline.training``."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from hilbert_pipeline.contract import training_contract
from hilbert_pipeline.documents import DocumentSet, build_document_set
from hilbert_pipeline.evaluation.plots import curves_figure
from hilbert_pipeline.evaluation.report import FORMS
from hilbert_pipeline.training.checkpoint import make_payload
from hilbert_pipeline.training.params import (
    TrainingSettings,
    build_config,
    resolve_training_settings,
)
from hilbert_pipeline.training.trainer import TrainingParams, fit

log = logging.getLogger(__name__)


def training_settings_node(training: dict) -> TrainingSettings:
    """The ``training`` block resolved once (tuned parameters applied when ``use_tuned``): the
    model hyper-parameters and optimisation settings every consumer reads."""
    return resolve_training_settings(training)


def training_documents_node(segment_features: dict, documents: pd.DataFrame,
                            label_map: dict | None, min_class_size: int
                            ) -> tuple[DocumentSet, dict]:
    """The labelled training-split documents (the class definition is the shared ``classes``
    parameters) and their label report."""
    return build_document_set(segment_features, documents, label_map=label_map,
                              min_class_size=int(min_class_size), only_split="train")


def train_model_node(docs: DocumentSet, label_report: dict, settings: TrainingSettings,
                     label_map: dict | None, min_class_size: int,
                     segmentation: dict | None = None
                     ) -> tuple[dict, pd.DataFrame, Any, dict]:
    """Train HILBERT on every labelled training-split document.

    The class definition (``label_map``, ``min_class_size``) is the shared ``classes``
    parameters, so that the deployed model predicts exactly the classes that were evaluated.
    The checkpoint records it with the segmentation rules (``extra["contract"]``), which the
    inference pipeline must reproduce.
    """
    config = build_config(docs, settings.model_params)
    log.info("training HILBERT on %d documents, classes %s (params from %s)", len(docs),
             label_report["class_counts"], settings.source)
    result = fit(config, docs, None, TrainingParams.from_dict(settings.training_params),
                 settings.seed)
    payload = make_payload(
        result.model, docs.label_names, encoder_meta=docs.meta,
        training_params=result.training_params.to_dict(),
        extra={"seed": settings.seed, "best_epoch": result.best_epoch,
               "best_val_macro_f1": result.best_val_macro_f1,
               "refit_epochs": result.refit_epochs, "members": result.members,
               "train_doc_ids": result.train_doc_ids, "val_doc_ids": result.val_doc_ids,
               "params_source": settings.source,
               "contract": training_contract(segmentation or {}, label_map,
                                             int(min_class_size))})
    form = result.config.prediction_form
    summary = {
        "n_documents": len(docs),
        "n_train": len(result.train_doc_ids),
        "n_validation": len(result.val_doc_ids),
        "refit_epochs": result.refit_epochs,
        "classes": label_report["class_counts"],
        "excluded": label_report["excluded"],
        "form": form,
        "members": result.members,
        "best_epoch": result.best_epoch,
        "epochs_run": int(result.history["epoch"].max()),
        "best_val_macro_f1": result.best_val_macro_f1,
        "seconds": round(result.seconds, 2),
        "seed": settings.seed,
        "params_source": settings.source,
        "tuned_params": settings.tuned,
        "config": result.config.to_dict(),
        "training_params": result.training_params.to_dict(),
    }
    log.info("training done: %s; best epoch %d, inner-validation macro-F1 %s, %.1fs",
             FORMS[form], result.best_epoch, result.best_val_macro_f1, result.seconds)
    # the network's member weights exist only for a network with members; a network without
    # them may still have its linear member's weight chosen by the inner CV (logged below)
    members = result.members if result.config.has_members else None
    if members is not None and members.get("reason"):
        log.info("member weights %s: no inner cross-validation (%s)",
                 members["weights"], members["reason"])
    elif members is not None:
        log.info("member weights (from %s-fold inner cross-validation): %s",
                 members["folds"], members["weights"])
    if result.members is not None and result.members.get("linear") is not None:
        why = result.members.get("reason")
        log.info("the linear member's weight in the final average: %.2f%s",
                 result.members["linear"], f" (no inner cross-validation: {why})" if why else "")
    note = None
    if not result.config.prediction.trains_network:
        note = ("No network trained: wide_combine='wide' predicts with the\n"
                "logistic regression alone (docs/model.md).")
    fig = curves_figure(result.history, f"HILBERT training ({len(docs)} documents)", note)
    return payload, result.history, fig, summary
