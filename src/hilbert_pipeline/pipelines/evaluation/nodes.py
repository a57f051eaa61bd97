"""Nodes of the ``evaluation`` pipeline: wiring only; the logic is in ``hilbert_pipeline.evaluation``."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from hilbert_pipeline import cpu_kernels
from hilbert_pipeline.checks import check_run_parameters
from hilbert_pipeline.cluster import cluster_client
from hilbert_pipeline.documents import DocumentSet, build_document_set
from hilbert_pipeline.evaluation import evaluate as ev
from hilbert_pipeline.evaluation import plots as pl
from hilbert_pipeline.evaluation import report as rp
from hilbert_pipeline.evaluation import statistics as st
from hilbert_pipeline.evaluation.methods import ROLES
from hilbert_pipeline.folds import make_folds
from hilbert_pipeline.training.params import TrainingSettings

log = logging.getLogger(__name__)

def _check(evaluation: dict) -> None:
    """The evaluation block's keys, seed, methods and overrides (the checks the run-start hook
    makes; again here for a node run on its own, e.g. in memory)."""
    check_run_parameters({"evaluation": evaluation})


def _documents(segment_features: dict, documents: pd.DataFrame, evaluation: dict,
               classes: dict):
    """Labelled documents; classes smaller than the fold count are an error (fixed split: not)."""
    has_split = "split" in documents.columns and documents["split"].notna().any()
    return build_document_set(
        segment_features, documents, label_map=classes.get("label_map"),
        min_class_size=int(classes.get("min_class_size", 1)),
        min_docs_per_class=None if has_split else int(evaluation["n_splits"]))


def make_folds_node(segment_features: dict, documents: pd.DataFrame, evaluation: dict,
                    classes: dict) -> tuple[DocumentSet, pd.DataFrame, dict]:
    """The labelled documents of the evaluation, their folds (computed once, saved to
    data/05_model_input/folds.csv) and the label report."""
    _check(evaluation)
    docs, report = _documents(segment_features, documents, evaluation, classes)
    folds = make_folds(docs, int(evaluation["n_splits"]), int(evaluation.get("n_repeats", 1)),
                       int(evaluation["seed"]))
    n_folds = folds.groupby(["repeat", "fold"]).ngroups
    report = {**report, "n_folds": n_folds, "grouped": docs.groups is not None,
              "fixed_split": docs.splits is not None}
    if report["excluded"]:
        log.warning("%d document(s) excluded from evaluation (see evaluation_labels.json): %s",
                    len(report["excluded"]), report["excluded"][:5])
    log.info("evaluation on %d documents, classes %s, %d folds", len(docs),
             report["class_counts"], n_folds)
    return docs, folds, report


def evaluate_methods_node(docs: DocumentSet, folds: pd.DataFrame, evaluation: dict,
                          settings: TrainingSettings, cluster: dict | None = None
                          ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Fit every method on every fold; model/optimisation settings are the resolved training
    settings; the fits run in this process, in ``evaluation.n_jobs`` processes, or on the Dask
    cluster of the ``cluster`` parameters."""
    _check(evaluation)
    tp = {**settings.training_params, "progress": False}
    with cluster_client(cluster) as client:
        run = ev.run_evaluation(docs, folds, list(evaluation["methods"]), settings.model_params,
                                tp, int(evaluation["seed"]),
                                evaluation.get("method_overrides") or {},
                                progress=bool(evaluation.get("progress", True)),
                                n_jobs=int(evaluation.get("n_jobs", 1)), client=client)
    return run.predictions, run.fold_metrics, run.gate_usage, run.mi


def tuned_on_test_documents(training: dict | None, label_report: dict) -> str | None:
    """The caution to print when the neural methods use tuned hyper-parameters but the folds
    test on documents the tuning study trained and scored on (no ``split`` column)."""
    if not (training or {}).get("use_tuned") or label_report.get("fixed_split"):
        return None
    return ("Caution: training.use_tuned is true and the corpus has no `split` column, so the "
            "tuning study chose its hyper-parameters on the same documents these folds test "
            "on; the neural methods' scores are optimistic. For clean numbers give the corpus "
            "a `split` column (train/test): tuning then never sees the test documents "
            "(docs/tuning.md).")


def report_node(predictions: pd.DataFrame, fold_metrics: pd.DataFrame, gate_usage: pd.DataFrame,
                mi: pd.DataFrame, label_report: dict, evaluation: dict,
                training: dict | None = None
                ) -> tuple[dict, dict, pd.DataFrame, str, Any, Any, pd.DataFrame, dict]:
    """metrics.json (every method and metric), the short DVC metrics file, per-class table,
    comparison.md, confusion matrices, gate usage, MI. ``training``: the training parameters,
    read only to flag tuned hyper-parameters evaluated on the tuning documents."""
    ci = evaluation.get("ci", "corrected_t")
    names = list(label_report["label_names"])
    summary = rp.summarize(fold_metrics, ci=ci)
    per_class = rp.per_class_table(predictions, names)
    n_rep = int(fold_metrics["repeat"].nunique())
    n_fold = int(fold_metrics["fold"].nunique())
    if label_report.get("fixed_split"):
        info = "Protocol: fixed train/test split from the corpus `split` column (one fold)."
    else:
        info = (f"Protocol: {n_rep} x {n_fold}-fold stratified "
                f"{'group ' if label_report.get('grouped') else ''}cross-validation "
                f"({n_rep * n_fold} folds, identical for every method); CI: {ci}.")
    caution = tuned_on_test_documents(training, label_report)
    if caution:
        log.warning(caution)
        info = f"{info}\n\n**{caution}**"
    main = "hilbert" if "hilbert" in summary else next(iter(summary))
    network = rp.network_method(fold_metrics, main)
    for sentence in (rp.form_sentence(fold_metrics, main),
                     rp.members_sentence(fold_metrics, main),
                     rp.network_sentence(summary, network, main)):
        if sentence:
            info = f"{info}\n\n{sentence}"
    table = rp.comparison_markdown(summary, info, label_report["class_counts"])
    if len(summary) > 1:
        paired = st.paired_comparison(fold_metrics, main, "macro_f1", ci)
        verdict = st.verdict(paired, summary, ROLES, main)
        table += "\n" + st.paired_markdown(paired, verdict, main)
        if caution:
            verdict = {**verdict, "caution": caution}
        summary = {**summary, "paired": {"reference": main, "metric": "macro_f1",
                                         "methods": paired, "verdict": verdict}}
    # what decides the numbers on this machine (versions, CPU kernels): compare before diffing
    summary = {**summary, "platform": cpu_kernels.fingerprint()}
    cm, cmn = rp.confusion_matrices(predictions, main, names)
    fig_main = pl.confusion_figure(cm, cmn, names, f"{main} (all folds)")
    base = rp.best_baseline(summary)
    if base is None:
        base = next((m for m in summary if m != main), main)
    cm, cmn = rp.confusion_matrices(predictions, base, names)
    fig_base = pl.confusion_figure(cm, cmn, names, f"best baseline: {base} (all folds)")
    gates = rp.gate_summary(gate_usage)
    mi_sum = rp.mi_summary(mi, ci=ci)
    log.info("method comparison\n%s\nreports: data/08_reporting/ (metrics.json, headline.json, "
             "comparison.md, fold_metrics.csv, per_class_metrics.csv, confusion_*.png, "
             "gate_usage.csv, mi_estimates.json)", table)
    fit_s = float(fold_metrics["seconds"].sum()) if "seconds" in fold_metrics else None
    return (summary, rp.headline_metrics(summary, main, network=network, fit_seconds=fit_s),
            per_class, table,
            fig_main, fig_base,
            gates, mi_sum)
