"""Apply a trained HILBERT checkpoint to new documents, and say why it decided.

The checkpoint records what inference must reproduce (:mod:`hilbert_pipeline.contract`, checked
before any audio is read and again on the computed features). Classes are never re-mapped: a
labelled document whose class the model does not know is listed, not scored.

Outputs per document (:func:`predict_corpus`): the class probabilities, which modalities it has,
the MoE gate weights, the change in the predicted class's probability when its audio or its text
is masked out (modality reliance), and its top-k segments by the joint pooling attention with
their time spans and text, so a reader can jump to that moment of the recording.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from hilbert_pipeline.contract import (
    InferenceError,
    check_feature_meta,
    check_parameters,
    encoder_mismatches,
    training_contract,
)
from hilbert_pipeline.documents import (
    DocumentSet,
    apply_label_map,
    clean_value,
    collate,
    rows_by_doc,
    sorted_rows,
)
from hilbert_pipeline.metrics import confusion, fold_metrics, per_class_metrics
from hilbert_pipeline.training.trainer import eval_batches, predict, softmax

log = logging.getLogger(__name__)

__all__ = ["InferenceError", "check_feature_meta", "check_parameters", "encoder_mismatches",
           "training_contract"]  # the contract, re-exported for callers of this module


# ------------------------------------------------------------------------------- the documents
@dataclass
class InferenceSet:
    """Documents to predict. ``docs.labels`` holds the class index of a known label, else -1.

    ``segments``: per document of ``docs`` the ``seg_idx`` of its feature rows (in order);
    ``labels``: the mapped label of each document of ``docs`` (None when unlabelled);
    ``unusable``: documents with no audio and no text features at all (not predicted, listed).
    """

    docs: DocumentSet
    segments: list[np.ndarray]
    labels: list[str | None]
    unusable: list[str] = field(default_factory=list)


def inference_set(segment_features: Mapping[str, Any], documents: pd.DataFrame,
                  label_names: Sequence[str], label_map: Mapping[str, str] | None
                  ) -> InferenceSet:
    """Assemble every document of ``documents`` (labels optional) against the model's classes."""
    index = segment_features["index"].reset_index(drop=True)
    rows_of = rows_by_doc(index, documents)
    doc_ids = documents["doc_id"].astype(str).tolist()
    raw = documents["label"].tolist() if "label" in documents.columns else [None] * len(doc_ids)
    mapped = apply_label_map([clean_value(v) for v in raw], label_map)
    code = {c: k for k, c in enumerate(label_names)}
    audio_all = np.asarray(segment_features["audio"], dtype=np.float32)
    text_all = np.asarray(segment_features["text"], dtype=np.float32)
    am_all = np.asarray(segment_features["audio_mask"], dtype=bool)
    tm_all = np.asarray(segment_features["text_mask"], dtype=bool)
    seg_idx = index["seg_idx"].to_numpy()
    keep, unusable, segs = [], [], []
    for i, d in enumerate(doc_ids):
        rows = sorted_rows(rows_of, seg_idx, d)
        if not (am_all[rows].any() or tm_all[rows].any()):
            unusable.append(d)
            continue
        keep.append((i, rows))
        segs.append(seg_idx[rows])
    docs = DocumentSet(
        doc_ids=[doc_ids[i] for i, _ in keep],
        labels=np.array([code.get(mapped[i], -1) if mapped[i] is not None else -1
                         for i, _ in keep], dtype=np.int64),
        label_names=list(label_names),
        audio=[audio_all[r] for _, r in keep], text=[text_all[r] for _, r in keep],
        audio_mask=[am_all[r] for _, r in keep], text_mask=[tm_all[r] for _, r in keep],
        meta=dict(segment_features.get("meta") or {}))
    return InferenceSet(docs=docs, segments=segs, labels=[mapped[i] for i, _ in keep],
                        unusable=unusable)


def _without(docs: DocumentSet, modality: str) -> DocumentSet:
    """``docs`` with every segment of ``modality`` masked out."""
    masks = {"audio": docs.audio_mask, "text": docs.text_mask}
    blank = [np.zeros_like(m) for m in masks[modality]]
    return DocumentSet(doc_ids=docs.doc_ids, labels=docs.labels, label_names=docs.label_names,
                       audio=docs.audio, text=docs.text,
                       audio_mask=blank if modality == "audio" else docs.audio_mask,
                       text_mask=blank if modality == "text" else docs.text_mask, meta=docs.meta)


# ------------------------------------------------------------------------------- the predictions
@dataclass
class Prediction:
    """Everything inference computes for an :class:`InferenceSet` (row order = ``docs``)."""

    proba: np.ndarray  # (D, C)
    gate: np.ndarray  # (D, K)
    has_audio: np.ndarray  # (D,) bool
    has_text: np.ndarray  # (D,) bool
    reliance_audio: np.ndarray  # (D,) p(pred) - p(pred | audio masked); NaN if not defined
    reliance_text: np.ndarray  # (D,) likewise for text
    attention: list[np.ndarray]  # per document (n_i,) segment weights, summing to 1
    relevance_audio: list[np.ndarray] = field(default_factory=list)  # per document (n_i,)
    relevance_text: list[np.ndarray] = field(default_factory=list)  # per document (n_i,)


def _segment_weights(model, docs: DocumentSet, idx, res) -> list[np.ndarray]:
    """Per document at ``idx``, the pooling attention over its segments in the forward output
    ``res`` (mean over hops), summing to 1.

    Two-modality models: the joint pooling, whose axis is ``[audio segments ; text segments]``
    (followed by the paired tokens with ``segment_fusion``); a segment's weight is the sum of
    its positions. Unimodal models: the pooling of their modality.
    """
    if "joint" in res.attention:
        att = res.attention["joint"].float().mean(dim=1)
        n = res.attention["audio"].shape[-1]
        att = att.reshape(att.shape[0], att.shape[1] // n, n).sum(dim=1)
    else:
        att = res.attention[model.config.modalities].float().mean(dim=1)
    att = att.cpu().numpy().astype(np.float64)
    out = []
    for r, i in enumerate(idx):
        w = att[r, : docs.audio[i].shape[0]]
        out.append(w / w.sum() if w.sum() > 0 else w)
    return out


def _baselines(model) -> dict[str, Any]:
    """Per modality the training mean of its features (the wide path's standardisation), else 0:
    relevance is measured against an average document."""
    out: dict[str, Any] = {"audio": 0.0, "text": 0.0}
    if model.config.prediction.linear_member:
        off = 0
        for m in model.pooled_modalities:
            w = model.config.audio_dim if m == "audio" else model.config.text_dim
            out[m] = model.pooled_mean[off:off + w]
            off += w
    return out


def segment_relevance(model, docs: DocumentSet, classes: np.ndarray
                      ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Gradient x input per segment and modality for the evidence of ``classes[i]``.

    The evidence is the class's logit minus the mean logit; a segment's relevance is
    ``sum_d grad_d * (x_d - mean_d)`` over its audio (resp. text) features, ``mean`` being the
    training documents' mean feature. For a residual wide path (a linear model on mean-pooled
    features, added to the logits) this decomposition is exact for its share: the relevances of a
    document sum to its evidence minus that of an average document. Positive: the segment pushes
    toward the predicted class.
    """
    import torch

    dev = next(model.parameters()).device
    base = _baselines(model)
    was_training = model.training
    model.eval()
    rel_a: list[np.ndarray] = []
    rel_t: list[np.ndarray] = []
    for i in range(len(docs)):
        b = {k: v.to(dev) for k, v in collate(docs, [i]).items()}
        a = b["audio"].clone().requires_grad_(model.config.uses_audio)
        t = b["text"].clone().requires_grad_(model.config.uses_text)
        out = model(a if model.config.uses_audio else None,
                    t if model.config.uses_text else None, b["audio_mask"], b["text_mask"])
        evidence = out.logits[0, int(classes[i])] - out.logits[0].mean()
        inputs = [x for x, used in ((a, model.config.uses_audio), (t, model.config.uses_text))
                  if used]
        grads = torch.autograd.grad(evidence, inputs, allow_unused=True)
        got = dict(zip([m for m in ("audio", "text") if getattr(model.config, f"uses_{m}")],
                       grads, strict=True))
        for m, x, mask, acc in (("audio", a, b["audio_mask"], rel_a),
                                ("text", t, b["text_mask"], rel_t)):
            g = got.get(m)
            if g is None:
                acc.append(np.zeros(x.shape[1]))
                continue
            r = (g * (x - base[m])).sum(dim=-1)[0] * mask[0].to(g.dtype)
            acc.append(r.detach().cpu().numpy().astype(np.float64))
    model.train(was_training)
    return rel_a, rel_t


def predict_corpus(model, docs: DocumentSet, batch_size: int = 32) -> Prediction:
    """Probabilities, gates, modality reliance and segment attention for ``docs``."""

    probs, gates, attention = [], [], []
    for idx, _, res in eval_batches(model, docs, batch_size):  # one pass for all three
        probs.append(softmax(res))
        gates.append(res.gate.float().cpu().numpy())
        attention.extend(_segment_weights(model, docs, idx, res))
    proba = np.concatenate(probs).astype(np.float64)
    gate = np.concatenate(gates).astype(np.float64)
    if not model.config.prediction.trains_network:  # "wide": no network, its gates mean nothing
        gate = gate[:, :0]
    elif getattr(model.config, "crop_segments", 0):
        # a model trained on crops predicts by averaging windows, as in the evaluation; the
        # attention and relevance still describe the whole document
        proba, gate = predict(model, docs, batch_size, return_gate=True)
    has_audio = np.array([m.any() for m in docs.audio_mask], dtype=bool)
    has_text = np.array([m.any() for m in docs.text_mask], dtype=bool)
    pred = proba.argmax(axis=1)
    reliance = {}
    cfg = model.config
    for modality, has, other in (("audio", has_audio, has_text), ("text", has_text, has_audio)):
        r = np.full(len(docs), np.nan)
        ok = np.flatnonzero(has & other) if cfg.modalities == "both" else np.array([], int)
        if len(ok):
            sub = _without(docs.subset(ok), modality)
            p_without = predict(model, sub, batch_size=batch_size)
            r[ok] = proba[ok, pred[ok]] - p_without[np.arange(len(ok)), pred[ok]]
        reliance[modality] = r
    rel_a, rel_t = segment_relevance(model, docs, pred)
    return Prediction(proba=proba, gate=gate, has_audio=has_audio, has_text=has_text,
                      reliance_audio=reliance["audio"], reliance_text=reliance["text"],
                      attention=attention, relevance_audio=rel_a, relevance_text=rel_t)


def document_embeddings(model, docs: DocumentSet, batch_size: int = 32
                        ) -> tuple[np.ndarray, str]:
    """``(vectors (D, width), what they are)``: the joint embedding ``z_joint`` of the trained
    deep branches, or, for a model whose prediction is its wide path alone (``"wide"`` form: the
    deep branches were never trained), the standardised pooled features the wide path reads."""

    if model.config.prediction_form == "wide":
        mean = model.pooled_mean.detach().cpu().numpy().astype(np.float64)
        std = model.pooled_std.detach().cpu().numpy().astype(np.float64)
        x = (docs.pooled_features(model.pooled_modalities) - mean) / std
        used = np.abs(model.wide.weight.detach().cpu().numpy()).sum(axis=0) > 0
        return x[:, used], "standardised pooled features read by the wide path"
    z = [res.z_joint.float().cpu().numpy() for _, _, res in eval_batches(model, docs, batch_size)]
    return np.concatenate(z).astype(np.float64), "z_joint"


def ranking(attention: np.ndarray, relevance: np.ndarray) -> tuple[np.ndarray, str]:
    """Segment order for the explanation and what it is by.

    By the pooling attention, as long as it tells segments apart; an attention that is flat
    (all weights within 1e-6 of each other, e.g. a deployed model whose deep branches kept their
    start and whose decision is the wide path's) says nothing, and the order is then by the
    gradient x input relevance.
    """
    if len(attention) and float(np.ptp(attention)) > 1e-6:
        return np.argsort(-attention, kind="stable"), "attention"
    return np.argsort(-relevance, kind="stable"), "relevance"


def _modalities(has_audio: bool, has_text: bool) -> str:
    return {(True, True): "audio+text", (True, False): "audio only",
            (False, True): "text only"}.get((bool(has_audio), bool(has_text)), "none")


def predictions_table(iset: InferenceSet, pred: Prediction,
                      training_ids: Sequence[str] = (),
                      excluded: Sequence[Mapping[str, Any]] = ()) -> pd.DataFrame:
    """One row per manifest row of the corpus: predicted documents, unusable ones and those
    excluded at validation (``excluded``: the validation report's entries, ``doc_id``, ``row``
    and ``reasons``) with empty predictions and the reason in ``note``.

    ``in_training``: the document was one the model was trained on (its prediction is not a
    held-out one).
    """
    names = iset.docs.label_names
    seen = {str(d) for d in training_ids}
    rows = []
    for i, d in enumerate(iset.docs.doc_ids):
        k = int(pred.proba[i].argmax())
        row = {"doc_id": d, "predicted_label": names[k],
               "confidence": float(pred.proba[i, k]),
               **{f"p_{c}": float(pred.proba[i, j]) for j, c in enumerate(names)},
               "has_audio": bool(pred.has_audio[i]), "has_text": bool(pred.has_text[i]),
               "modalities": _modalities(pred.has_audio[i], pred.has_text[i]),
               "label": iset.labels[i], "in_training": d in seen,
               "reliance_audio": float(pred.reliance_audio[i]),
               "reliance_text": float(pred.reliance_text[i]),
               **{f"gate_{j}": float(g) for j, g in enumerate(pred.gate[i])},
               "note": ""}
        rows.append(row)
    for d in iset.unusable:
        rows.append({"doc_id": d, "predicted_label": None, "has_audio": False, "has_text": False,
                     "modalities": "none", "in_training": d in seen,
                     "note": "no usable audio and no transcript text in any segment: not "
                             "predicted (see the embedding summary)"})
    for e in excluded:
        d = e.get("doc_id") or f"(manifest row {e.get('row')})"
        rows.append({"doc_id": d, "predicted_label": None, "in_training": d in seen,
                     "note": "excluded at validation, not predicted: "
                             + "; ".join(map(str, e.get("reasons") or []))})
    columns = (["doc_id", "predicted_label", "confidence"] + [f"p_{c}" for c in names]
               + ["has_audio", "has_text", "modalities", "label", "in_training", "reliance_audio",
                  "reliance_text"] + [f"gate_{j}" for j in range(pred.gate.shape[1])] + ["note"])
    return pd.DataFrame(rows).reindex(columns=columns)


def _span_lookup(segments: pd.DataFrame) -> pd.DataFrame:
    """``start``, ``end`` and ``text`` of the segments table indexed by (doc_id, seg_idx), built
    once per table for :func:`_segment_spans`."""
    index = [segments["doc_id"].astype(str), segments["seg_idx"].astype(int)]
    return segments.set_index(index)[["start", "end", "text"]]


def _segment_spans(lookup: pd.DataFrame, doc_id: str, seg_idx) -> pd.DataFrame:
    """The rows of ``lookup`` (:func:`_span_lookup`) for the segments ``seg_idx`` of ``doc_id``,
    in that order (NaN for a segment the table lacks)."""
    idx = pd.MultiIndex.from_arrays([[str(doc_id)] * len(seg_idx),
                                     np.asarray(seg_idx, dtype=np.int64)])
    return lookup.reindex(idx)


def segment_timeline(iset: InferenceSet, pred: Prediction, segments: pd.DataFrame
                     ) -> dict[str, pd.DataFrame]:
    """Per document every segment's time span, attention weight and relevance, in segment order
    (the report's weights-over-time plot)."""
    out, lookup = {}, _span_lookup(segments)
    for i, d in enumerate(iset.docs.doc_ids):
        spans = _segment_spans(lookup, d, iset.segments[i])
        out[d] = pd.DataFrame({"seg_idx": iset.segments[i],
                               "start": spans["start"].to_numpy(dtype=float),
                               "end": spans["end"].to_numpy(dtype=float),
                               "weight": pred.attention[i],
                               "relevance": pred.relevance_audio[i] + pred.relevance_text[i]})
    return out


def explanations_table(iset: InferenceSet, pred: Prediction, segments: pd.DataFrame,
                       top_k: int = 5) -> pd.DataFrame:
    """Per document its ``top_k`` segments (:func:`ranking`): where they are, what is said, their
    attention weight and their relevance (total, from the audio and from the text features)."""
    rows, lookup = [], _span_lookup(segments)
    for i, d in enumerate(iset.docs.doc_ids):
        w = pred.attention[i]
        rel = pred.relevance_audio[i] + pred.relevance_text[i]
        order, by = ranking(w, rel)
        top = order[: max(int(top_k), 0)]
        spans = _segment_spans(lookup, d, [int(iset.segments[i][j]) for j in top])
        for rank, (j, (start, end, text)) in enumerate(
                zip(top, spans.itertuples(index=False), strict=True), start=1):
            s = int(iset.segments[i][j])
            text = None if not isinstance(text, str) else text
            rows.append({"doc_id": d, "rank": rank, "seg_idx": s, "start": float(start),
                         "end": float(end), "text": text, "weight": float(w[j]),
                         "relevance": float(rel[j]),
                         "relevance_audio": float(pred.relevance_audio[i][j]),
                         "relevance_text": float(pred.relevance_text[i][j]), "ranked_by": by,
                         "has_audio": bool(iset.docs.audio_mask[i][j]),
                         "has_text": bool(iset.docs.text_mask[i][j])})
    return pd.DataFrame(rows, columns=["doc_id", "rank", "seg_idx", "start", "end", "text",
                                       "weight", "relevance", "relevance_audio",
                                       "relevance_text", "ranked_by", "has_audio", "has_text"])


def external_metrics(iset: InferenceSet, pred: Prediction,
                     training_ids: Sequence[str] = ()) -> dict[str, Any]:
    """Metrics on the labelled documents of a known class (nothing when none is).

    They are held-out metrics only for documents the model was not trained on: ``n_in_training``
    counts the others, and ``held_out`` says whether there are none.
    """

    names = iset.docs.label_names
    labelled = [(i, lab) for i, lab in enumerate(iset.labels) if lab is not None]
    unknown = [{"doc_id": iset.docs.doc_ids[i], "label": lab,
                "reason": f"label {lab!r} is not a class of the model ({names}): not scored"}
               for i, lab in labelled if iset.docs.labels[i] < 0]
    scored = np.array([i for i, _ in labelled if iset.docs.labels[i] >= 0], dtype=np.int64)
    out: dict[str, Any] = {
        "n_documents": len(iset.docs) + len(iset.unusable), "n_predicted": len(iset.docs),
        "n_labelled": len(labelled), "n_scored": int(len(scored)), "label_names": names,
        "not_scored": unknown + [{"doc_id": d, "reason": "no usable audio or text"}
                                 for d in iset.unusable]}
    if unknown:
        log.warning("%d labelled document(s) have classes the model does not know and are not "
                    "scored: %s", len(unknown), [u["doc_id"] for u in unknown][:10])
    seen = {str(d) for d in training_ids}
    out["n_in_training"] = int(sum(iset.docs.doc_ids[i] in seen for i in scored))
    out["held_out"] = out["n_in_training"] == 0
    if out["n_in_training"]:
        log.warning("%d of the %d scored documents were used to train the model: their metrics "
                    "are not held-out", out["n_in_training"], len(scored))
    if len(scored) == 0:
        out["metrics"] = None
        out["note"] = "no labelled document of a known class: predictions only"
        return out
    y, p = iset.docs.labels[scored], pred.proba[scored]
    out["metrics"] = fold_metrics(y, p)
    cm = confusion(y, p.argmax(axis=1), len(names))
    out["confusion"] = {"rows_true_columns_predicted": names, "matrix": cm.tolist()}
    out["per_class"] = per_class_metrics(y, p, names).to_dict(orient="records")
    return out
