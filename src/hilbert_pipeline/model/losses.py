"""HILBERT training objective (docs/model.md): every term an ``nn.Module`` with its own weight.

Convention: each term module stores its weight in ``.weight`` and its ``forward`` returns the
**unweighted** term, so that logs show the raw values (comparable across λ settings);
:class:`HilbertLoss` multiplies by the weight when it forms ``total`` and never calls a module
whose weight is 0 (the term is then neither computed nor reported).

Batch size: the contrastive, CKA and MI terms compare documents of one batch with each other,
so they need at least 2 documents (unbiased CKA: 4) that have the modality in question; with
fewer, :class:`HilbertLoss` skips them for that batch (the key is absent from its result).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .cka import linear_cka
from .config import HilbertConfig
from .model import HilbertOutput


def info_nce(query: torch.Tensor, key: torch.Tensor,
             temperature: float | torch.Tensor, labels: torch.Tensor | None = None
             ) -> torch.Tensor:
    """InfoNCE of ``query -> key``: row i of ``key`` is the positive of row i of ``query``, the
    other rows are negatives. Rows are L2-normalised here (cosine similarity / temperature);
    returns the mean cross-entropy over rows (``log B`` when all similarities are equal).

    With ``labels`` (B,), the supervised form (Khosla et al. 2020, L_out): every key of the same
    label is a positive, and a row's loss is the mean of ``-log softmax`` over its positives; with
    all labels distinct this equals the instance form."""
    if query.shape != key.shape or query.dim() != 2:
        raise ValueError(f"info_nce needs two (B, d) tensors of the same shape, got "
                         f"{tuple(query.shape)} and {tuple(key.shape)}")
    q = F.normalize(query, dim=-1)
    k = F.normalize(key, dim=-1)
    logits = q @ k.T / temperature
    if labels is None:
        target = torch.arange(q.shape[0], device=q.device)
        return F.cross_entropy(logits, target)
    if labels.shape != (q.shape[0],):
        raise ValueError(f"labels must have shape ({q.shape[0]},), got {tuple(labels.shape)}")
    pos = (labels[:, None] == labels[None, :]).to(logits.dtype)
    logp = F.log_softmax(logits, dim=-1)
    return -((pos * logp).sum(dim=1) / pos.sum(dim=1)).mean()


class _Weighted(nn.Module):
    def __init__(self, weight: float) -> None:
        super().__init__()
        if not (isinstance(weight, int | float) and math.isfinite(weight) and weight >= 0):
            raise ValueError(f"{type(self).__name__} weight must be a finite number >= 0, "
                             f"got {weight!r}")
        self.weight = float(weight)

    @property
    def active(self) -> bool:
        return self.weight > 0

    def extra_repr(self) -> str:
        return f"weight={self.weight}"


class DualContrastiveLoss(_Weighted):
    """Reciprocal dual contrastive term toward the joint embedding:
    ``½[NCE(a→j) + NCE(j→a)] + ½[NCE(t→j) + NCE(j→t)]``. Each half may be computed on its
    own subset of documents (those that have the modality), given as separate (z_m, z_j)
    pairs; ``labels_a``/``labels_t`` (the classes of those rows) switch to the label-aware form
    where same-class documents are positives (``contrastive_positives="label"``)."""

    def forward(self, z_audio: torch.Tensor, z_joint_a: torch.Tensor, z_text: torch.Tensor,
                z_joint_t: torch.Tensor, temperature: torch.Tensor,
                labels_a: torch.Tensor | None = None,
                labels_t: torch.Tensor | None = None) -> torch.Tensor:
        la = 0.5 * (info_nce(z_audio, z_joint_a, temperature, labels_a)
                    + info_nce(z_joint_a, z_audio, temperature, labels_a))
        lt = 0.5 * (info_nce(z_text, z_joint_t, temperature, labels_t)
                    + info_nce(z_joint_t, z_text, temperature, labels_t))
        return la + lt


class DirectContrastiveLoss(_Weighted):
    """The ``direct`` baseline: symmetric audio↔text InfoNCE ``½[NCE(a→t) + NCE(t→a)]``."""

    def forward(self, z_audio: torch.Tensor, z_text: torch.Tensor,
                temperature: torch.Tensor) -> torch.Tensor:
        return 0.5 * (info_nce(z_audio, z_text, temperature)
                      + info_nce(z_text, z_audio, temperature))


class CKALoss(_Weighted):
    """``(1 − CKA(X_a, Z_j)) + (1 − CKA(X_t, Z_j))``, linear CKA, each pair on its own rows."""

    def __init__(self, weight: float, unbiased: bool = False) -> None:
        super().__init__(weight)
        self.unbiased = unbiased

    def forward(self, x_audio: torch.Tensor, z_joint_a: torch.Tensor, x_text: torch.Tensor,
                z_joint_t: torch.Tensor) -> torch.Tensor:
        return ((1.0 - linear_cka(x_audio, z_joint_a, self.unbiased))
                + (1.0 - linear_cka(x_text, z_joint_t, self.unbiased)))


class MIBalanceLoss(_Weighted):
    """Balance of the InfoNCE mutual-information estimates toward the joint embedding.

    ``I_m ≈ log B − NCE(ẑ_m → ẑ_j)`` for m in {audio, text} (the InfoNCE lower bound),
    ``L_mi = ((I_a − I_t) / log B)²``. All three inputs must describe the same B documents
    (B >= 2). Returns ``(L_mi, I_a, I_t)``; the I's keep their graph (callers detach them for
    logging).
    """

    def forward(self, z_audio: torch.Tensor, z_text: torch.Tensor, z_joint: torch.Tensor,
                temperature: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b = z_joint.shape[0]
        if b < 2:
            raise ValueError(f"MIBalanceLoss needs at least 2 documents, got {b}")
        log_b = math.log(b)
        i_a = log_b - info_nce(z_audio, z_joint, temperature)
        i_t = log_b - info_nce(z_text, z_joint, temperature)
        return ((i_a - i_t) / log_b) ** 2, i_a, i_t


def class_weights(class_counts: Sequence[int | float] | torch.Tensor, power: float
                  ) -> torch.Tensor:
    """``w_c ∝ (1 / n_c) ** power``, normalised so that the mean weight over training samples is
    1 (``Σ n_c w_c / Σ n_c = 1``), which keeps the loss scale of unweighted CE. A class absent
    from the training data (count 0) is treated as count 1: its weight is then finite, and it
    never multiplies a training sample anyway."""
    counts = torch.as_tensor(class_counts, dtype=torch.float64).flatten()
    if counts.numel() == 0 or not torch.isfinite(counts).all() or (counts < 0).any():
        raise ValueError(f"class_counts must be finite non-negative numbers, got "
                         f"{counts.tolist()}")
    if counts.sum() <= 0:
        raise ValueError("class_counts are all 0: no training labels")
    c = counts.clamp_min(1.0)
    w = c.pow(-power)
    w = w * counts.sum() / (counts * w).sum()
    return w.float()


class ClassificationLoss(_Weighted):
    """Cross-entropy with optional class weights, or focal loss (Lin et al. 2017,
    ``−w_y (1 − p_y)^γ log p_y``). Both average with the class weights of the targets as the
    normaliser (PyTorch's weighted-CE convention), so focal with γ = 0 equals weighted CE."""

    def __init__(self, weight: float = 1.0, n_classes: int | None = None,
                 class_counts: Sequence[int | float] | torch.Tensor | None = None,
                 power: float = 0.5, kind: str = "ce", gamma: float = 2.0,
                 label_smoothing: float = 0.0) -> None:
        super().__init__(weight)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
        self.label_smoothing = float(label_smoothing)
        if kind not in ("ce", "focal"):
            raise ValueError(f"kind must be 'ce' or 'focal', got {kind!r}")
        if not gamma >= 0:
            raise ValueError(f"focal gamma must be >= 0, got {gamma!r}")
        self.kind = kind
        self.gamma = float(gamma)
        self.n_classes = n_classes
        if class_counts is not None:
            w = class_weights(class_counts, power)
            if n_classes is not None and w.numel() != n_classes:
                raise ValueError(f"class_counts has {w.numel()} entries but there are "
                                 f"{n_classes} classes")
            self.register_buffer("class_weight", w)
        else:
            self.class_weight = None

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        b, n_cls = logits.shape
        if labels.shape != (b,) or labels.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"labels must be an integer tensor of shape ({b},), got "
                             f"{labels.dtype} {tuple(labels.shape)}")
        if b and (labels.min() < 0 or labels.max() >= n_cls):
            raise ValueError(f"labels must lie in [0, {n_cls}), got min {int(labels.min())} "
                             f"max {int(labels.max())}")
        labels = labels.long()
        w = self.class_weight
        if self.kind == "ce":
            return F.cross_entropy(logits, labels, weight=w,
                                   label_smoothing=self.label_smoothing)
        logp = F.log_softmax(logits, dim=-1).gather(1, labels[:, None]).squeeze(1)
        fl = -((1.0 - logp.exp()).clamp_min(0.0) ** self.gamma) * logp
        wy = w[labels] if w is not None else torch.ones_like(fl)
        return (wy * fl).sum() / wy.sum()


class DistillationLoss(_Weighted):
    """Knowledge distillation (Hinton et al. 2015): the cross-entropy of the logits against a
    teacher's class probabilities, ``−Σ_c p_teacher,c log softmax(z)_c``, averaged with the
    class weights of the documents' labels as :class:`ClassificationLoss` averages, so that the
    distilled and the labelled parts of the target weigh the classes alike. ``weight`` is the
    teacher's share ``α`` of the target: :class:`HilbertLoss` adds ``(1 − α)`` of the
    classification term and ``α`` of this one. ``label_smoothing`` ε smooths the teacher as
    the classification term smooths the labels, ``(1 − ε) p_teacher + ε / C``, so the whole
    target is ``(1 − ε)[(1 − α) y + α p_teacher] + ε / C``: a teacher that is sure of the
    labels leaves the smoothed classification term as it was."""

    def __init__(self, weight: float = 0.0,
                 class_counts: Sequence[int | float] | torch.Tensor | None = None,
                 power: float = 0.5, label_smoothing: float = 0.0) -> None:
        super().__init__(weight)
        if not self.weight < 1.0:
            raise ValueError(f"the distillation weight must be in [0, 1), got {weight!r}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
        self.label_smoothing = float(label_smoothing)
        if class_counts is not None:
            self.register_buffer("class_weight", class_weights(class_counts, power))
        else:
            self.class_weight = None

    def forward(self, logits: torch.Tensor, teacher: torch.Tensor,
                labels: torch.Tensor) -> torch.Tensor:
        if teacher.shape != logits.shape:
            raise ValueError(f"teacher probabilities must have the logits' shape "
                             f"{tuple(logits.shape)}, got {tuple(teacher.shape)}")
        eps = self.label_smoothing
        target = (1.0 - eps) * teacher + eps / logits.shape[-1]
        per_doc = -(target * F.log_softmax(logits, dim=-1)).sum(dim=-1)
        w = self.class_weight
        wy = w[labels.long()] if w is not None else torch.ones_like(per_doc)
        return (wy * per_doc).sum() / wy.sum()


class HilbertLoss(nn.Module):
    """``L = (1 − α) L_cls + α L_distill + s·(λ_dual L_dual + λ_cka L_cka + λ_mi L_mi) +
    λ_lb L_lb`` (docs/model.md; ``α L_distill`` only with a teacher).

    ``s`` is the auxiliary warm-up factor the trainer passes as ``aux_scale`` (1 by default).
    The InfoNCE temperature is the model's (``output.temperature``), as open_clip keeps
    ``logit_scale`` in the model: this module has no parameters.

    ``forward(output, labels)`` returns a dict of scalar loss tensors only: ``total`` and every
    computed term unweighted by name — ``cls``, ``dual`` (joint alignment) or ``direct`` (direct
    alignment), ``cka``, ``mi``, ``lb``. Diagnostics (the InfoNCE estimates I_a, I_t) come apart,
    from :func:`mi_estimates`. Rules:

    - a term with weight 0 is not computed and absent from the dict;
    - ``direct`` alignment replaces ``dual`` by audio↔text InfoNCE and skips ``cka`` and ``mi``
      (both are defined relative to z_j; the baseline must have no joint-centric term);
    - unimodal models have only ``cls`` (+ ``lb`` for the MoE head); the MLP head has no ``lb``;
    - alignment terms use, per modality, only the documents that have that modality
      (``has_audio``/``has_text``; ``mi`` and ``direct`` the documents with both), and are
      skipped for a batch with fewer than 2 such documents (4 for unbiased CKA);
    - ``joint_stop_gradient``: z_j enters the dual, CKA and MI terms detached;
    - ``contrastive_positives="label"``: the dual term treats same-class documents as positives;
    - ``teacher``: the trainer's teacher probabilities of the batch's documents, by the
      modalities each network reads (``"both"``, ``"text"``, ``"audio"``). With
      ``distill_weight`` α > 0 and a teacher for its modalities, a network's ``distill`` is
      computed on the same logits as its ``cls`` and the two enter ``total`` as
      ``(1 − α) cls + α distill``; the members (``text_distill``, ``audio_distill``) read the
      teacher of their own modality. Without a teacher (validation, prediction) ``cls`` alone;
    - ``labels=None`` (unsupervised pretraining): no ``cls`` and no ``lb`` (the head is not
      trained), and the dual term takes instance positives whatever ``contrastive_positives``;
    - ``wide_combine="mixture"`` (or ``"wide"``): ``cls`` is computed on the fused network's
      own logits (``fused_logits``), so the network learns as if the wide path were absent;
    - ``unimodal_members``: ``cls`` is the fused network's term (on ``fused_logits``) and each
      member adds its own terms, computed by a unimodal loss of its own config and named
      ``text_cls``, ``text_lb``, ``audio_cls``, ``audio_lb``; every term enters ``total`` with
      weight 1 (the members have their own parameters, so each member's gradient is that of
      training it alone). The members are not trained without labels.
    """

    def __init__(self, config: HilbertConfig,
                 class_counts: Sequence[int | float] | torch.Tensor | None = None) -> None:
        super().__init__()
        config.validate()
        c = config
        self.config = c
        self.cls = ClassificationLoss(1.0, c.n_classes, class_counts, c.class_weight_power,
                                      c.class_loss, c.focal_gamma, c.label_smoothing)
        self.distill = DistillationLoss(c.distill_weight, class_counts, c.class_weight_power,
                                        c.label_smoothing)
        both = c.modalities == "both"
        joint = both and c.alignment == "joint"
        self.dual = DualContrastiveLoss(c.lambda_dual if joint else 0.0)
        self.direct = DirectContrastiveLoss(
            c.lambda_dual if both and c.alignment == "direct" else 0.0)
        self.cka = CKALoss(c.lambda_cka if joint else 0.0, c.cka_unbiased)
        self.mi = MIBalanceLoss(c.lambda_mi if joint else 0.0)
        self.lb_weight = c.lambda_lb if c.head == "moe" else 0.0
        self.members = nn.ModuleDict(
            {m: HilbertLoss(c.member_config(m), class_counts) for m in ("text", "audio")}
            if c.has_members else {})

    def forward(self, output: HilbertOutput, labels: torch.Tensor | None,
                aux_scale: float = 1.0,
                teacher: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        c = self.config
        out: dict[str, torch.Tensor] = {}
        if labels is None:  # unsupervised (pretraining): the alignment terms alone
            total = output.logits.new_zeros(())
        else:
            # the fused network learns on its own logits (as if the wide path and the members
            # were absent), except in the residual form, which trains through the sum
            fused = output.fused_logits if output.fused_logits is not None else output.head_logits
            logits = output.logits if c.prediction_form == "residual" else fused
            term = self.cls(logits, labels)
            out["cls"] = term
            total = self.cls.weight * term
            if self.distill.active and teacher is not None and c.modalities in teacher:
                soft = self.distill(logits, teacher[c.modalities], labels)
                out["distill"] = soft
                alpha = self.distill.weight
                total = (1.0 - alpha) * total + alpha * soft
        tau = output.temperature
        if c.modalities == "both":
            if tau is None:
                raise ValueError("HilbertOutput.temperature is missing (the model sets it)")
            ha, ht = output.has_audio, output.has_text
            hb = ha & ht
            zj = output.z_joint.detach() if c.joint_stop_gradient else output.z_joint
            if self.dual.active and ha.sum() >= 2 and ht.sum() >= 2:
                la, lt = ((labels[ha], labels[ht])
                          if c.contrastive_positives == "label" and labels is not None
                          else (None, None))
                term = self.dual(output.z_audio[ha], zj[ha], output.z_text[ht], zj[ht], tau,
                                 la, lt)
                out["dual"] = term
                total = total + aux_scale * self.dual.weight * term
            if self.direct.active and hb.sum() >= 2:
                term = self.direct(output.z_audio[hb], output.z_text[hb], tau)
                out["direct"] = term
                total = total + aux_scale * self.direct.weight * term
            min_cka = 4 if self.cka.unbiased else 2
            if self.cka.active and ha.sum() >= min_cka and ht.sum() >= min_cka:
                if c.cka_source == "features":
                    xa, xt = output.feat_audio, output.feat_text
                else:
                    xa, xt = output.z_audio, output.z_text
                term = self.cka(xa[ha], zj[ha], xt[ht], zj[ht])
                out["cka"] = term
                total = total + aux_scale * self.cka.weight * term
            if self.mi.active and hb.sum() >= 2:
                term, _, _ = self.mi(output.z_audio[hb], output.z_text[hb], zj[hb], tau)
                out["mi"] = term
                total = total + aux_scale * self.mi.weight * term
        if self.lb_weight > 0 and labels is not None:
            out["lb"] = output.lb_loss
            total = total + self.lb_weight * output.lb_loss
        if labels is not None:
            for m, loss in self.members.items():
                terms = loss(output.members[m], labels, teacher=teacher)
                out.update({f"{m}_{k}": v for k, v in terms.items() if k != "total"})
                total = total + terms["total"]
        out["total"] = total
        return out


def mi_estimates(output: HilbertOutput) -> dict[str, torch.Tensor]:
    """Diagnostics, not losses: the InfoNCE estimates ``mi_audio`` (I_a = I(z_a; z_j)) and
    ``mi_text`` (I_t) on the documents of ``output`` that have both modalities, detached.

    Empty for unimodal models and for batches with fewer than 2 such documents. Computed for every
    two-modality model, so that the ``no_mi`` ablation and the ``direct`` baseline are comparable
    on them with HILBERT.
    """
    if output.z_audio is None or output.z_text is None or output.temperature is None:
        return {}
    both = output.has_audio & output.has_text
    if int(both.sum()) < 2:
        return {}
    with torch.no_grad():
        _, i_a, i_t = MIBalanceLoss(1.0)(output.z_audio[both], output.z_text[both],
                                          output.z_joint[both], output.temperature)
    return {"mi_audio": i_a.detach(), "mi_text": i_t.detach()}
