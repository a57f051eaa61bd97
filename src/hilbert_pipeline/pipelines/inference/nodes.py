"""Nodes of the ``inference`` pipeline: wiring only (logic: ``inference.predict``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from hilbert_pipeline.corpus import ValidationResult, load_corpus
from hilbert_pipeline.evaluation.report import FORMS
from hilbert_pipeline.inference.predict import (
    InferenceError,
    check_feature_meta,
    check_parameters,
    explanations_table,
    external_metrics,
    inference_set,
    predict_corpus,
    predictions_table,
    segment_timeline,
)
from hilbert_pipeline.inference.report import inference_html
from hilbert_pipeline.pipelines.embedding.nodes import build_encoder
from hilbert_pipeline.training.checkpoint import Checkpoint, load_checkpoint
from hilbert_pipeline.training.params import ParamsError

log = logging.getLogger(__name__)


def load_model_node(inference: dict[str, Any], segmentation: dict[str, Any],
                    embedding: dict[str, Any], label_map: dict | None) -> Checkpoint:
    """Load the checkpoint and refuse it when this run's parameters differ from its training
    (before any audio is read)."""
    path = str(inference["model_path"])
    ck = load_checkpoint(path, device=str(inference.get("device", "cpu")))
    current = {}
    for role in ("audio_encoder", "text_encoder"):
        enc = build_encoder(embedding.get(role), embedding, role)
        current[role] = None if enc is None else enc.describe()
    check_parameters(ck.extra, ck.encoder_meta, segmentation, label_map, current, path)
    log.info("model %s: classes %s, trained on %d documents", path, ck.label_names,
             len(ck.extra.get("train_doc_ids") or []))
    return ck


def validate_inference_corpus_node(corpus: str, segmentation: dict[str, Any],
                                   inference: dict[str, Any], model: Checkpoint,
                                   transcription: dict | None = None) -> ValidationResult:
    """Validate the corpus to predict: the same checks (and speaker selection) as for
    training, labels optional; rows without a transcript read the transcribe step's."""
    del model  # an input only so that a mismatched model is refused before any work
    if not corpus:
        raise ParamsError("parameter 'corpus' is empty: pass --params corpus=/path/to/corpus")
    result = load_corpus(
        corpus, report_path=inference.get("report_path"), require_labels=False,
        min_docs_per_label=0, exclude_invalid=bool(segmentation.get("exclude_invalid", False)),
        duration_tolerance=float(segmentation.get("duration_tolerance", 0.5)),
        overlap_tolerance=float(segmentation.get("overlap_tolerance", 0.0)),
        speakers=segmentation.get("speakers"),
        rolling_captions=segmentation.get("rolling_captions", "auto"),
        generated_transcripts=(transcription or {}).get("output_dir")
        if (transcription or {}).get("enabled") else None,
        progress=bool(inference.get("progress", True)))
    rep = result.report
    log.info("inference corpus %s: %d of %d documents valid, %d excluded", rep["corpus"],
             rep["n_documents"], rep["n_rows"], len(rep["excluded"]))
    return result


def predict_node(model: Checkpoint, segment_features: dict, documents: pd.DataFrame,
                 segments: pd.DataFrame, corpus: str, inference: dict[str, Any],
                 corpus_report: dict | None = None
                 ) -> tuple[pd.DataFrame, pd.DataFrame, dict, str]:
    """Predictions, explanations, held-out metrics (when labelled) and the HTML report. Every
    manifest row gets a row of ``predictions``: documents excluded at validation
    (``corpus_report["excluded"]``) with their reason and no prediction."""
    path = str(inference["model_path"])
    check_feature_meta(model.encoder_meta, segment_features.get("meta") or {}, path)
    label_map = model.extra["contract"]["label_map"]
    iset = inference_set(segment_features, documents, model.label_names, label_map)
    if len(iset.docs) == 0:
        raise InferenceError(f"corpus {corpus}: no document has usable audio or text; nothing to "
                         "predict (see data/08_reporting/inference_embedding_summary.json)")
    pred = predict_corpus(model.model, iset.docs, int(inference.get("batch_size", 32)))
    seen = [*(model.extra.get("train_doc_ids") or []), *(model.extra.get("val_doc_ids") or [])]
    excluded = list((corpus_report or {}).get("excluded") or [])
    table = predictions_table(iset, pred, seen, excluded)
    explanations = explanations_table(iset, pred, segments, int(inference.get("top_k", 5)))
    metrics = external_metrics(iset, pred, seen)
    metrics["model_path"] = path
    metrics["model_form"] = model.model.config.prediction_form
    if model.model.config.has_members:
        from hilbert_pipeline.model import MEMBERS

        metrics["member_weights"] = dict(zip(MEMBERS, model.model.member_weights.tolist(),
                                             strict=True))
        # why the fused network predicts alone, when no inner cross-validation chose
        metrics["member_reason"] = (model.extra.get("members") or {}).get("reason")
    if model.model.config.prediction.averages_members:
        # the linear member's share of the final average (chosen when the model was trained)
        metrics["linear_weight"] = float(model.model.wide_weight)
    metrics["corpus"] = str(Path(corpus).resolve())
    report = inference_html(table, explanations, segments,
                            segment_timeline(iset, pred, segments), metrics,
                            {"model_path": path, "corpus": metrics["corpus"],
                             "label_names": model.label_names,
                             "form": FORMS[metrics["model_form"]],
                             "members": metrics.get("member_weights"),
                             "member_reason": metrics.get("member_reason"),
                             "linear_weight": metrics.get("linear_weight")})
    m = metrics.get("metrics")
    log.info("inference: %d document(s) predicted%s", len(iset.docs),
             (f"; macro-F1 {m['macro_f1']:.3f} on {metrics['n_scored']} labelled documents"
              + ("" if metrics["held_out"] else
                 f" ({metrics['n_in_training']} of them seen in training: not held-out)"))
             if m else " (no labels: predictions only)")
    for e in excluded:
        log.warning("document %r was excluded at validation (%s): not predicted (listed in "
                    "predictions.csv with the reason)", e.get("doc_id"),
                    "; ".join(map(str, e.get("reasons") or [])))
    for d in iset.unusable:
        log.warning("document %r has no usable audio and no transcript text: not predicted "
                    "(listed in predictions.csv with a note)", d)
    return table, explanations, metrics, report
