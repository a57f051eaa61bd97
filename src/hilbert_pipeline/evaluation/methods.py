"""The compared methods: HILBERT, its baselines and ablations, and trivial reference points.

Every method takes the same train/test documents of a fold and the same seed and returns test
probabilities ``(n_test, C)``. Neural methods share the base model hyper-parameters and
optimisation settings; each changes only the fields named in its spec, so a difference in
scores is attributable to that change.

=================  ==========  ========================================================
name               role        what changes
=================  ==========  ========================================================
hilbert            proposed    nothing: every regulariser on, MoE head, joint alignment
text_only          baseline    ``modalities="text"`` (same projection/pooling/head)
audio_only         baseline    ``modalities="audio"``
concat_logreg      baseline    masked-mean features of both modalities, standardised,
                               class-weighted logistic regression, C chosen by inner CV
text_logreg        baseline    the same logistic regression on the text features only
audio_logreg       baseline    the same logistic regression on the audio features only
direct             baseline    ``alignment="direct"``: audio<->text InfoNCE, no joint terms
majority           trivial     ``DummyClassifier(strategy="most_frequent")``
stratified         trivial     ``DummyClassifier(strategy="stratified")`` (seeded)
no_dual            ablation    ``lambda_dual=0``
no_cka             ablation    ``lambda_cka=0``
no_mi              ablation    ``lambda_mi=0``
mlp_head           ablation    ``head="mlp"``
bilinear_logreg    baseline    pooled means + mean outer product of 8-d PCA projections
                               of each segment's audio and text, logistic regression
segment_mil        baseline    multiple-instance model: per-segment fusion and class
                               scores, log-mean-exp over segments (segment_baselines.py)
no_wide            ablation    ``wide_path=False``: the network alone, no linear member (what
                               the default hilbert predicts where its member takes weight 0)
with_wide          ablation    ``wide_path=True, wide_combine="mixture", wide_weight=0.5``: the
                               network's probabilities averaged equally with its linear
                               member's (hilbert chooses the weight by inner CV)
no_fusion          ablation    ``segment_fusion=False, segment_head=False``
no_segment_head    ablation    ``segment_head=False`` (the fusion tokens stay in the pool)
random_init        ablation    ``principal_init=0``: every projection row starts at PyTorch's
                               random initialisation, none at the segments' principal axes
no_members         ablation    ``unimodal_members=False``: the fused network alone, without
                               its text and audio members (when hilbert has them: its own
                               fused member, one fit serves both)
with_members       ablation    ``unimodal_members=True``: the fused network averaged with its
                               text and audio members, weights by inner CV (the default
                               hilbert; an ablation when hilbert is set to have no members)
no_distill         ablation    ``distill_weight=0``: trained on the labels alone, without
                               the pooled logistic regression's probabilities as part of the
                               target
=================  ==========  ========================================================
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.dummy import DummyClassifier

from hilbert_pipeline.documents import DocumentSet
from hilbert_pipeline.errors import UserError
from hilbert_pipeline.evaluation.segment_baselines import BilinearProjection, fit_segment_mil
from hilbert_pipeline.model import HilbertConfig
from hilbert_pipeline.training.logreg import C_GRID, fit_logreg, full_proba
from hilbert_pipeline.training.params import build_config, route
from hilbert_pipeline.training.trainer import (
    TrainingParams,
    fit,
    loss_terms,
    member_probabilities,
    predict,
)

__all__ = ["C_GRID", "METHODS", "ROLES", "MethodError", "MethodResult", "MethodSpec",
           "fit_logreg", "resolve_methods", "run_method"]


class MethodError(UserError):
    """Unknown method or invalid per-method overrides."""


@dataclass(frozen=True)
class MethodSpec:
    name: str
    kind: str  # "neural" | "logreg" | "bilinear" | "mil" | "dummy"
    role: str  # "proposed" | "baseline" | "trivial" | "ablation"
    description: str
    config: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)


METHODS: dict[str, MethodSpec] = {s.name: s for s in (
    MethodSpec("hilbert", "neural", "proposed", "HILBERT, all regularisers, MoE head"),
    MethodSpec("text_only", "neural", "baseline", "text branch only", {"modalities": "text"}),
    MethodSpec("audio_only", "neural", "baseline", "audio branch only", {"modalities": "audio"}),
    MethodSpec("concat_logreg", "logreg", "baseline",
               "pooled audio+text features, logistic regression (C by inner CV)",
               options={"modalities": ("audio", "text")}),
    MethodSpec("text_logreg", "logreg", "baseline",
               "pooled text features, logistic regression (C by inner CV)",
               options={"modalities": ("text",)}),
    MethodSpec("audio_logreg", "logreg", "baseline",
               "pooled audio features, logistic regression (C by inner CV)",
               options={"modalities": ("audio",)}),
    MethodSpec("direct", "neural", "baseline", "direct audio<->text contrastive alignment",
               {"alignment": "direct"}),
    MethodSpec("majority", "dummy", "trivial", "always the most frequent training class",
               options={"strategy": "most_frequent"}),
    MethodSpec("stratified", "dummy", "trivial", "random labels with the training class rates",
               options={"strategy": "stratified"}),
    MethodSpec("no_dual", "neural", "ablation", "without the reciprocal dual contrastive term",
               {"lambda_dual": 0.0}),
    MethodSpec("no_cka", "neural", "ablation", "without the CKA term", {"lambda_cka": 0.0}),
    MethodSpec("no_mi", "neural", "ablation", "without the MI-balance term", {"lambda_mi": 0.0}),
    MethodSpec("mlp_head", "neural", "ablation", "MLP head instead of mixture of experts",
               {"head": "mlp"}),
    MethodSpec("no_wide", "neural", "ablation",
               "the network alone, without its linear member (wide path)",
               {"wide_path": False}),
    MethodSpec("with_wide", "neural", "ablation",
               "the network averaged equally with its linear member (a logistic regression on "
               "pooled features)", {"wide_path": True, "wide_combine": "mixture",
                                    "wide_weight": 0.5}),
    MethodSpec("no_fusion", "neural", "ablation",
               "without same-segment fusion (and its segment head)",
               {"segment_fusion": False, "segment_head": False}),
    MethodSpec("no_segment_head", "neural", "ablation",
               "without the multiple-instance segment head", {"segment_head": False}),
    MethodSpec("random_init", "neural", "ablation",
               "projections started at random, none at the segments' principal components",
               {"principal_init": 0.0}),
    MethodSpec("no_members", "neural", "ablation",
               "the fused network alone, without its text and audio members",
               {"unimodal_members": False}),
    MethodSpec("with_members", "neural", "ablation",
               "the fused network averaged with its text and audio members (weights by inner "
               "cross-validation)", {"unimodal_members": True}),
    MethodSpec("no_distill", "neural", "ablation",
               "trained on the labels alone, without distillation from the pooled logistic "
               "regression", {"distill_weight": 0.0}),
    MethodSpec("bilinear_logreg", "bilinear", "baseline",
               "pooled means + mean outer product of low-rank audio/text segment projections, "
               "logistic regression (C by inner CV)", options={"rank": 8}),
    MethodSpec("segment_mil", "mil", "baseline",
               "multiple-instance model: per-segment fusion, class scores, log-mean-exp",
               options={"width": 16, "epochs": 60, "lr": 3e-3}),
)}


#: method name -> role, what the paired comparison's verdict reads
ROLES: dict[str, str] = {name: spec.role for name, spec in METHODS.items()}


@dataclass
class MethodResult:
    proba: np.ndarray  # (n_test, C)
    gate: np.ndarray | None = None  # (n_test, K) MoE gate weights
    mi: dict[str, float] = field(default_factory=dict)  # MI estimates on the test documents
    best_epoch: int | None = None
    seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)  # e.g. the logistic regression's C


def resolve_methods(names: list[str]) -> list[MethodSpec]:
    """Specs for ``names`` (order kept); unknown or duplicate names are errors."""
    if not names:
        raise MethodError("evaluation.methods is empty")
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise MethodError(f"unknown methods {unknown}; known: {sorted(METHODS)}")
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise MethodError(f"methods listed twice: {dups}")
    return [METHODS[n] for n in names]


def run_method(spec: MethodSpec, train: DocumentSet, test: DocumentSet,
               model_params: Mapping[str, Any], training_params: Mapping[str, Any],
               seed: int, overrides: Mapping[str, Any] | None = None) -> MethodResult:
    """Fit ``spec`` on ``train`` and return its probabilities on ``test``."""
    t0 = time.perf_counter()
    cfg_over, tr_over, other = route(overrides)
    if spec.kind == "neural":
        if other:
            raise MethodError(f"method {spec.name}: unknown override keys {sorted(other)}")
        cfg = build_config(train, model_params, **{**dict(spec.config), **cfg_over})
        tp = TrainingParams.from_dict({**dict(training_params), **tr_over})
        res = fit(cfg, train, None, tp, seed)
        proba, gate = predict(res.model, test, tp.eval_batch_size, return_gate=True)
        mi = {}
        trained = res.config.prediction.trains_network  # "wide": no network, nothing to report
        if len(test) >= 2 and trained:
            terms = loss_terms(res.model, test)
            mi = {k: terms[k] for k in ("mi_audio", "mi_text") if k in terms}
        gate = gate if cfg.head == "moe" and trained else None
        seconds = time.perf_counter() - t0
        info: dict[str, Any] = {"refit_epochs": res.refit_epochs,
                                "form": res.config.prediction_form, "views": {}}
        # the weights of what the prediction averages: the network's members, and the linear
        # member's share of a mixture (chosen by inner CV or fixed)
        members = dict(res.members["weights"]) if res.config.has_members else {}
        if res.config.prediction.averages_members:
            members["linear"] = float(res.model.wide_weight)
        if members:
            info["members"] = members

        def view(p: np.ndarray) -> MethodResult:
            return MethodResult(p, gate, mi, res.best_epoch, seconds,
                                {"refit_epochs": res.refit_epochs, "form": "deep"})

        def predict_at(weight: float) -> np.ndarray:
            """The mixture's prediction with the linear member at ``weight`` (the fitted
            weight is restored afterwards, also on an error)."""
            kept = float(res.model.wide_weight)
            res.model.set_wide_weight(weight)
            try:
                return predict(res.model, test, tp.eval_batch_size)
            finally:
                res.model.set_wide_weight(kept)

        # one fit, more predictions (evaluate.shared_fits): a mixture's network is trained
        # exactly as without the linear member, whatever the member's weight, and the fused
        # network exactly as without its members (same seed, same weights: tested properties)
        if res.config.prediction.averages_members:
            info["views"]["network"] = view(predict(res.model, test, tp.eval_batch_size,
                                                    member=True))
            half = view(predict_at(0.5))  # the plain average (``with_wide``)
            half.info.update(form="mixture", members={**members, "linear": 0.5})
            info["views"]["half"] = half
        if res.config.has_members:
            fused = member_probabilities(res.model, test, tp.eval_batch_size)["fused"]
            info["views"]["fused"] = view(fused)
            if res.config.prediction.averages_members:
                # the fused network with the linear member, weighted as the same mixture
                # without members would weigh it (``no_members``): its inner CV trains the same
                # fused networks, so its weight comes from this fit's (``fused_linear``)
                w = (res.members["fused_linear"] if res.config.wide_weight_by_cv
                     else float(res.model.wide_weight))
                linear = predict_at(1.0)  # the linear member's own probabilities
                mixed = view((1 - w) * fused + w * linear)
                mixed.info.update(form="mixture", members={"linear": float(w)})
                info["views"]["fused_linear"] = mixed
        return MethodResult(proba, gate, mi, res.best_epoch, seconds, info)
    if cfg_over or tr_over:
        raise MethodError(f"method {spec.name} has no model/training parameters; got "
                          f"{sorted({**cfg_over, **tr_over})}")
    opts = {**dict(spec.options), **other}
    info: dict[str, Any] = {}
    power = float(model_params.get("class_weight_power", _default("class_weight_power")))
    if spec.kind == "logreg":
        proba, info = _logreg(train, test, seed, class_weight_power=power, **opts)
    elif spec.kind == "bilinear":
        proj = BilinearProjection.fit(train, int(opts.pop("rank")), seed)
        clf, chosen, _ = fit_logreg(train, seed, class_weight_power=power,
                                    features=proj.features(train), **opts)
        proba = full_proba(clf[-1], clf.predict_proba(proj.features(test)), train.n_classes)
        info = {"C": chosen}
    elif spec.kind == "mil":
        proba = fit_segment_mil(train, test, seed, power, **opts)
    elif spec.kind == "dummy":
        proba = _dummy(train, test, seed, **opts)
    else:  # pragma: no cover - the registry only holds the kinds above
        raise MethodError(f"unknown method kind {spec.kind}")
    return MethodResult(proba, seconds=time.perf_counter() - t0, info=info)


def _default(name: str) -> Any:
    """A ``HilbertConfig`` field's default (the owner of settings shared with the baselines)."""
    return HilbertConfig.__dataclass_fields__[name].default


def _logreg(train: DocumentSet, test: DocumentSet, seed: int,
            modalities: tuple[str, ...] = ("audio", "text"), **options: Any
            ) -> tuple[np.ndarray, dict[str, Any]]:
    """The logistic-regression baselines (:func:`fit_logreg`) scored on ``test``; the test fold
    is never seen while choosing C."""
    clf, chosen, _ = fit_logreg(train, seed, modalities, **options)
    proba = clf.predict_proba(test.pooled_features(modalities))
    return full_proba(clf[-1], proba, train.n_classes), {"C": chosen}


def _dummy(train: DocumentSet, test: DocumentSet, seed: int, strategy: str) -> np.ndarray:

    clf = DummyClassifier(strategy=strategy, random_state=seed)
    clf.fit(np.zeros((len(train), 1)), train.labels)
    return full_proba(clf, clf.predict_proba(np.zeros((len(test), 1))), train.n_classes)
