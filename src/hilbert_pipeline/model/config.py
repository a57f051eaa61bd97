"""Configuration of the HILBERT model and its losses.

One flat dataclass holds every switch described in docs/model.md, so that a checkpoint can rebuild the
model from a plain dict (``to_dict`` / ``from_dict``) and an Optuna trial can override any field.
Every choice the design leaves open is a field here (marked *recon* in ``docs/model.md``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from hilbert_pipeline.errors import UserError

ALIGNMENTS = ("joint", "direct")
HEADS = ("moe", "mlp")
MODALITIES = ("both", "audio", "text")
CKA_SOURCES = ("features", "projected")
CLASS_LOSSES = ("ce", "focal")
POOL_COMBINES = ("linear", "mean")
POSITIVES = ("instance", "label")
POOL_INITS = ("uniform", "random")
INPUT_NORMS = ("standardize", "layernorm")
WIDE_COMBINES = ("mixture", "residual", "wide")


@dataclass(frozen=True)
class PredictionForm:
    """What predicts, as one object: the trainer, the methods, inference and the reports ask it
    instead of branching on ``wide_path`` / ``wide_combine`` themselves.

    ``name``: ``"deep"`` (the trained network alone; the default), ``"mixture"`` (the average of
    the network's and the linear member's class probabilities), ``"residual"`` (their logits
    add up and the network trains through the sum) or ``"wide"`` (the linear member alone: no
    network is trained, a user's choice). The linear member is the logistic regression on pooled
    features (``wide_path``)."""

    name: str

    @classmethod
    def of(cls, wide_path: bool, wide_combine: str) -> PredictionForm:
        return cls(wide_combine if wide_path else "deep")

    @property
    def linear_member(self) -> bool:
        """A linear member on the pooled features takes part in the prediction."""
        return self.name != "deep"

    @property
    def trains_network(self) -> bool:
        """The network is trained (every form but ``"wide"``)."""
        return self.name != "wide"

    @property
    def network_on_its_own(self) -> bool:
        """The network's loss and selection read its own logits, as if the member were absent
        (``"mixture"``, ``"wide"``): the network alone is then also a prediction of its own."""
        return self.name in ("mixture", "wide")

    @property
    def averages_members(self) -> bool:
        """The prediction averages the network's and the member's probabilities."""
        return self.name == "mixture"

    @property
    def description(self) -> str:
        """One phrase for the reports."""
        return {"mixture": "a weighted average of the trained network and its linear member "
                           "(wide path; the weight, 0 to 1/2, chosen by inner cross-validation "
                           "unless set)",
                "wide": "the logistic regression (wide path) alone, no network (a user's "
                        "choice)",
                "residual": "the trained network on top of its linear member (wide path)",
                "deep": "the trained network alone"}[self.name]


def members_apply(unimodal_members: bool, modalities: str, form: str) -> bool:
    """Whether ``unimodal_members`` gives a network members: two modalities, and a form whose
    network predicts (``"deep"``, ``"mixture"``). The one rule, for configs and for raw
    parameter dicts (``evaluate.shared_fits``)."""
    return bool(unimodal_members) and modalities == "both" and form in ("deep", "mixture")


class ConfigError(UserError):
    """A HilbertConfig field has a value the model cannot be built from."""


@dataclass
class HilbertConfig:
    """Every hyper-parameter of the HILBERT model and its training objective.

    Architecture
        ``audio_dim`` / ``text_dim``: widths of the frozen segment features (an unused modality of
        a unimodal model may be 0). ``d``: model width. ``input_norm``: ``"standardize"`` (each
        feature column z-scored with the training segments' mean and std, set by the trainer
        with :meth:`HilbertModel.set_segment_stats`) or ``"layernorm"`` (per segment). ``n_heads``: heads of the cross-modal
        attention (``d`` must be divisible by it). ``n_cross_layers``: stacked cross-attention
        blocks (0 = the joint branch pools the projected streams directly, an ablation).
        ``pool_hops`` (r) and ``pool_hidden`` (d_a of Lin et al. 2017, None -> d) of the
        structured self-attentive pooling; ``pool_combine``: ``"linear"`` maps the r hop vectors
        (r*d) to d with a learned linear layer (default: keeps hops distinct, so each hop can
        specialise), ``"mean"`` averages them. ``position_encoding``: add a sinusoidal encoding of
        the segment index after projection, multiplied by ``position_scale`` (at 1.0 the encoding's
        RMS is about twice that of the projected content at initialisation and drowns it).
        ``modality_dropout``: in training, each document of a two-modality model loses one of
        its modalities (chosen at random; never its only one) with this probability, so that
        the head cannot lean on one modality alone and a modality without signal cannot carry
        memorised training labels (ModDrop, Neverova et al. 2016). Inference uses everything.
        ``segment_dropout``: in training, each real segment of a document is left out with this
        probability, from both modalities together (a segment's words and voice stay paired),
        drawn anew at every step; a document whose draw would leave it no segment keeps all of
        them. Documents are seen as random subsets of their segments, a cheap augmentation for
        labels carried by many segments. Inference uses every segment.
        ``principal_init``: the fraction of each modality's projection rows that start at the
        whitened principal components of the training documents' segments (set by the trainer
        with :meth:`HilbertModel.init_principal_projections`; no labels used); the other rows
        keep PyTorch's random initialisation (0: all of them).
        ``pool_init``: ``"uniform"`` starts every pooling hop as the plain mean over segments
        (score layer initialised to zero), ``"random"`` uses PyTorch's default initialisation.
        ``max_segments``: optional hard cap on N (inputs
        with more segments are rejected, so an upstream cap that did not happen is noticed).
        ``segment_fusion``: same-segment fusion (two modalities only): segment i's projected
        audio and text become one paired token, and the joint pooling reads these tokens beside
        the cross-attended streams, so the network knows which words were spoken in which
        voice. ``segment_head``: a multiple-instance head on the paired tokens (class scores
        per segment, log-mean-exp over the document's segments) whose logits add to the
        classifier's, so a label carried by a few segments of a long document is not averaged
        away; needs ``segment_fusion``.
    Head
        ``head``: ``"moe"`` (mixture of experts, docs/model.md) or ``"mlp"`` (ablation).
        ``wide_path``: a linear member beside the network (wide and deep, Cheng et al. 2016; on
        by default, in the ``"mixture"`` form with its weight chosen by inner cross-validation,
        so that the trained network always predicts and the regression joins it only where
        held-out predictions say it helps; docs/model.md item 5):
        a linear map of the standardised masked mean of the raw segment features of each used
        modality (the standardisation, mean/std of the training documents, is model state set
        by the trainer with :meth:`HilbertModel.set_pooled_stats`). ``wide_init``: ``"logreg"``
        (the trainer sets it to a class-weighted logistic regression fitted on the same training
        documents, its modalities and C chosen by repeated inner CV) or ``"zero"``.
        ``wide_trainable``: whether its weights keep learning after that start.
        ``wide_combine``: how the linear member and the network make one prediction.
        ``"mixture"``: a weighted average of their class probabilities
        (``logits = log((1 − w) p_net + w p_wide)``, ``w`` = ``wide_weight``); the network is
        trained and early-stopped on its own logits (``HilbertOutput.head_logits``), exactly as
        without the linear member. ``wide_weight``: ``"auto"`` (the default: the trainer
        chooses ``w`` from the inner cross-validation's out-of-fold predictions of the network
        and of the regression, ``TrainingParams.member_folds``: by default the plain average,
        ``1 − member_floor``, when the regression's macro-F1 there is within
        ``TrainingParams.linear_margin`` of the network's, else 0; ``linear_rule: log_loss``
        chooses among 0, ``member_step``, ..., ``1 − member_floor`` by the lowest log-loss;
        0, the network alone, when no inner cross-validation runs) or a fixed number in
        [0, 1] (0.5: the plain average, the ``with_wide`` method).
        ``"residual"``: the logits add up and the network is trained through the sum (it learns
        what the linear member misses; its output layers start at 0 when the member starts from
        the logistic regression). ``"wide"``: the linear member alone, nothing trained (a
        user's choice, never the default: it is a logistic regression, not HILBERT).
        ``n_experts`` (K), ``top_k`` (None = dense softmax gate), ``expert_hidden``
        (None -> 2*d).
        ``unimodal_members`` (two modalities only; on by default, docs/model.md item 6 has the
        measurements): the network holds, beside the fused
        network, a text member and an audio member (each that modality's projection, pooling
        and head, as the ``text_only``/``audio_only`` baselines), trained on their own
        classification loss in the same run with their own parameters, so that the fused
        network trains exactly as without them. The network's prediction averages the three
        members' class probabilities with the weights in the model's ``member_weights`` buffer
        (fused, text, audio), which the trainer chooses from inner cross-validation predictions
        of all three (``TrainingParams.member_folds``; docs/model.md item 6); until then the
        weights are (1, 0, 0), the fused network alone. A modality
        whose signal is spurious on the training documents (a voice that identifies each
        document) is then read through the other member instead of being memorised. Not in the
        ``"residual"`` and ``"wide"`` forms (below).
    Modalities / alignment
        ``modalities``: ``"both"`` (HILBERT) or ``"audio"`` / ``"text"`` (unimodal baselines
        with the same projection, pooling and head). ``alignment``: ``"joint"`` (reciprocal dual
        contrastive toward the joint embedding) or ``"direct"`` (symmetric audio<->text InfoNCE
        baseline; the joint-centric CKA and MI terms are then skipped).
    Losses
        ``lambda_dual``, ``lambda_cka``, ``lambda_mi``, ``lambda_lb``: weights; 0 removes a term.
        ``temperature_init`` / ``learn_temperature`` / ``temperature_min`` / ``temperature_max``:
        the InfoNCE temperature (log-parametrised, clamped; model state).
        ``contrastive_positives``: ``"instance"`` (paper form: only the same document is a
        positive, every other document of the batch a negative) or ``"label"`` (supervised
        contrastive: every document of the same class is a positive, so same-class documents are
        never pushed apart). ``joint_stop_gradient``: the alignment terms (dual, CKA, MI) treat
        z_j as a fixed target, so they pull each modality toward the joint space but never make the
        joint space carry a modality (the joint is shaped by the classification loss only).
        ``cka_source``: ``"features"``
        (masked mean of the raw segment features, default) or ``"projected"`` (the pooled
        per-modality vectors z_a, z_t). ``cka_unbiased``: unbiased HSIC (needs B >= 4).
        ``class_loss``: ``"ce"`` or ``"focal"`` (``focal_gamma``); ``label_smoothing``: the
        cross-entropy's target smoothing (0 = none); ``class_weight_power``:
        class weights = (1 / count) ** power, normalised to mean 1 over training samples.
        ``distill_weight``: knowledge distillation from a pooled logistic regression (Hinton et
        al. 2015): the share ``α`` of the classification target given to the class
        probabilities that the logistic regression on the training documents' pooled features
        (modalities and C by repeated inner CV, the ``with_wide`` member's fit; for a unimodal
        member, the regression on that member's modality) gives each training document; the
        loss is ``(1 − α) CE(y) + α CE(p_teacher)``. Training only: the network alone
        predicts, and nothing of the regression is kept. 0 = off.
        ``crop_segments``: random crops as augmentation (0 = off): in training, a document
        longer than this many segments is cut to a random window of that many consecutive
        segments (masks and label kept), and a prediction averages the class probabilities of
        windows of that length every half window (multi-crop); shorter documents are whole.
    """

    audio_dim: int
    text_dim: int
    n_classes: int
    d: int = 64
    input_norm: str = "standardize"
    principal_init: float = 0.5
    n_heads: int = 4
    n_cross_layers: int = 1
    pool_hops: int = 2
    pool_hidden: int | None = None
    pool_combine: str = "linear"
    dropout: float = 0.1
    modality_dropout: float = 0.0
    segment_dropout: float = 0.0
    attention_dropout: float = 0.0
    position_encoding: bool = True
    position_scale: float = 0.1
    pool_init: str = "uniform"
    max_segments: int | None = None
    segment_fusion: bool = True
    segment_head: bool = True
    head: str = "moe"
    wide_path: bool = True
    wide_init: str = "logreg"
    wide_trainable: bool = False
    wide_combine: str = "mixture"
    wide_weight: float | str = "auto"
    n_experts: int = 4
    top_k: int | None = None
    expert_hidden: int | None = None
    modalities: str = "both"
    alignment: str = "joint"
    lambda_dual: float = 0.1
    lambda_cka: float = 0.1
    lambda_mi: float = 0.1
    lambda_lb: float = 0.01
    temperature_init: float = 0.07
    learn_temperature: bool = True
    temperature_min: float = 0.01
    temperature_max: float = 1.0
    contrastive_positives: str = "instance"
    joint_stop_gradient: bool = False
    cka_source: str = "features"
    cka_unbiased: bool = False
    class_loss: str = "ce"
    focal_gamma: float = 2.0
    label_smoothing: float = 0.2
    distill_weight: float = 0.8
    class_weight_power: float = 0.5
    crop_segments: int = 0
    unimodal_members: bool = True

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ derived values
    @property
    def uses_audio(self) -> bool:
        return self.modalities in ("both", "audio")

    @property
    def uses_text(self) -> bool:
        return self.modalities in ("both", "text")

    @property
    def pooled_modalities(self) -> tuple[str, ...]:
        """The modalities whose pooled raw features feed the linear member (wide path), in
        order."""
        return tuple(m for m, used in (("audio", self.uses_audio), ("text", self.uses_text))
                     if used)

    @property
    def wide_weight_by_cv(self) -> bool:
        """The linear member's weight in the mixture is chosen by the trainer's inner
        cross-validation (``wide_weight="auto"`` on a ``"mixture"``)."""
        return self.prediction.averages_members and self.wide_weight == "auto"

    @property
    def prediction(self) -> PredictionForm:
        """What predicts (:class:`PredictionForm`)."""
        return PredictionForm.of(self.wide_path, self.wide_combine)

    @property
    def prediction_form(self) -> str:
        """The name of :attr:`prediction`: ``"deep"``, ``"mixture"``, ``"residual"``, ``"wide"``."""
        return self.prediction.name

    @property
    def has_members(self) -> bool:
        """The network holds unimodal members beside the fused network (``unimodal_members``
        on a two-modality model whose network predicts: not in the ``"residual"`` form, whose
        network trains through the sum with the linear member, nor the ``"wide"`` form, which
        has no trained network)."""
        return members_apply(self.unimodal_members, self.modalities, self.prediction_form)

    def member_config(self, modality: str) -> HilbertConfig:
        """The config of the ``modality`` member: the same fields on that modality alone, no
        linear member and no members of its own (distilled, with ``distill_weight``, from the
        regression on its own modality)."""
        return self.replace(modalities=modality, unimodal_members=False, wide_path=False)

    @property
    def expert_hidden_dim(self) -> int:
        return self.expert_hidden if self.expert_hidden is not None else 2 * self.d

    @property
    def pool_hidden_dim(self) -> int:
        return self.pool_hidden if self.pool_hidden is not None else self.d

    @property
    def head_in_dim(self) -> int:
        """Width of the classifier input: [z_a; z_t; z_j] for "both", z_m for unimodal."""
        return 3 * self.d if self.modalities == "both" else self.d

    # ------------------------------------------------------------------ validation
    def validate(self) -> HilbertConfig:
        """Raise :class:`ConfigError` (a ValueError) listing every invalid field; return self."""
        errs: list[str] = []

        def is_int(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        def is_num(v: Any) -> bool:
            return (isinstance(v, int | float) and not isinstance(v, bool)) and math.isfinite(v)

        def need_int(name: str, lo: int, allow_none: bool = False) -> None:
            v = getattr(self, name)
            if v is None and allow_none:
                return
            if not is_int(v) or v < lo:
                errs.append(f"{name} must be an integer >= {lo}{' or None' if allow_none else ''}"
                            f", got {v!r}")

        def need_choice(name: str, choices: tuple[str, ...]) -> None:
            v = getattr(self, name)
            if v not in choices:
                errs.append(f"{name} must be one of {list(choices)}, got {v!r}")

        def need_bool(name: str) -> None:
            if not isinstance(getattr(self, name), bool):
                errs.append(f"{name} must be a bool, got {getattr(self, name)!r}")

        def need_nonneg(name: str) -> None:
            v = getattr(self, name)
            if not is_num(v) or v < 0:
                errs.append(f"{name} must be a finite number >= 0, got {v!r}")

        need_choice("modalities", MODALITIES)
        need_choice("alignment", ALIGNMENTS)
        need_choice("head", HEADS)
        need_choice("cka_source", CKA_SOURCES)
        need_choice("class_loss", CLASS_LOSSES)
        need_choice("pool_combine", POOL_COMBINES)
        need_choice("contrastive_positives", POSITIVES)
        need_choice("pool_init", POOL_INITS)
        need_choice("input_norm", INPUT_NORMS)
        need_choice("wide_init", ("zero", "logreg"))
        need_choice("wide_combine", WIDE_COMBINES)
        for name in ("position_encoding", "learn_temperature", "cka_unbiased",
                     "joint_stop_gradient", "wide_path", "wide_trainable",
                     "segment_fusion", "segment_head", "unimodal_members"):
            need_bool(name)
        for name, used in (("audio_dim", self.uses_audio), ("text_dim", self.uses_text)):
            need_int(name, 1 if used else 0)
        need_int("n_classes", 2)
        need_int("d", 1)
        need_int("n_heads", 1)
        need_int("n_cross_layers", 0)
        need_int("pool_hops", 1)
        need_int("pool_hidden", 1, allow_none=True)
        need_int("max_segments", 1, allow_none=True)
        need_int("n_experts", 1)
        need_int("top_k", 1, allow_none=True)
        need_int("expert_hidden", 1, allow_none=True)
        if self.wide_path is True and self.wide_combine == "wide" and self.wide_init == "zero":
            errs.append("wide_combine='wide' with wide_init='zero' is a constant predictor "
                        "(use wide_init='logreg')")
        v = self.wide_weight
        if v != "auto" and (not is_num(v) or not 0.0 <= v <= 1.0):
            errs.append(f"wide_weight must be 'auto' or a number in [0, 1], got {v!r}")
        if not is_int(self.crop_segments) or self.crop_segments == 1 or self.crop_segments < 0:
            errs.append(f"crop_segments must be 0 (off) or an integer >= 2, "
                        f"got {self.crop_segments!r}")
        if self.segment_head is True and self.segment_fusion is False:
            errs.append("segment_head needs segment_fusion (it scores the paired tokens)")
        if is_int(self.d) and is_int(self.n_heads) and self.n_heads > 0 and self.d % self.n_heads:
            errs.append(f"d={self.d} is not divisible by n_heads={self.n_heads}")
        if (is_int(self.top_k) and is_int(self.n_experts) and self.top_k > self.n_experts):
            errs.append(f"top_k={self.top_k} exceeds n_experts={self.n_experts}")
        v = self.distill_weight
        if not is_num(v) or not 0.0 <= v < 1.0:
            errs.append(f"distill_weight must be in [0, 1), got {v!r}")
        v = self.label_smoothing
        if not is_num(v) or not 0.0 <= v < 1.0:
            errs.append(f"label_smoothing must be in [0, 1), got {v!r}")
        for name in ("modality_dropout", "principal_init"):
            v = getattr(self, name)
            if not is_num(v) or not 0.0 <= v <= 1.0:
                errs.append(f"{name} must be in [0, 1], got {v!r}")
        for name in ("dropout", "attention_dropout", "segment_dropout"):
            v = getattr(self, name)
            if not is_num(v) or not 0.0 <= v < 1.0:
                errs.append(f"{name} must be in [0, 1), got {v!r}")
        for name in ("lambda_dual", "lambda_cka", "lambda_mi", "lambda_lb", "focal_gamma",
                     "class_weight_power", "position_scale"):
            need_nonneg(name)
        temps = (self.temperature_min, self.temperature_init, self.temperature_max)
        if not all(is_num(t) and t > 0 for t in temps):
            errs.append(f"temperatures must be finite and > 0, got min/init/max={temps}")
        elif not temps[0] <= temps[1] <= temps[2]:
            errs.append(f"need temperature_min <= temperature_init <= temperature_max, got {temps}")
        if errs:
            raise ConfigError("invalid HilbertConfig: " + "; ".join(errs))
        return self

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field (JSON/YAML/pickle friendly)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HilbertConfig:
        """Rebuild a config from :meth:`to_dict` output; unknown or missing keys are errors.

        Unknown keys are rejected rather than ignored so that a typo in a parameters file
        (``lamda_cka``) does not silently train with the default.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"HilbertConfig.from_dict needs a dict, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown HilbertConfig keys: {unknown}")
        required = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING]
        missing = [n for n in required if n not in data]
        if missing:
            raise ConfigError(f"HilbertConfig is missing required keys: {missing}")
        return cls(**data)

    def replace(self, **changes: Any) -> HilbertConfig:
        """Validated copy with some fields changed, e.g. ``cfg.replace(modalities="audio")``."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ConfigError(f"unknown HilbertConfig keys: {unknown}")
        return dataclasses.replace(self, **changes)
