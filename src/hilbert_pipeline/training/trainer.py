"""Training loop for HILBERT models: ``fit`` / ``predict`` (pure PyTorch, no Kedro).

* AdamW, gradient-norm clipping, minibatches of at least two documents (the contrastive terms
  need negatives): a trailing batch of one document is merged into the previous batch.
* Early stopping on an inner validation split (stratified per class, grouped when the documents
  carry groups, seeded): the model state of the epoch with the best validation macro-F1 is
  restored at the end; training stops after ``patience`` epochs without improvement. A class with
  a single training document stays in the training part (it cannot be both learned and
  validated).
* Linear member (``wide_path``): a ``"mixture"`` model's network trains and is early-stopped on
  its own logits; a ``"wide"`` model (a user's choice) is not trained at all (its prediction is
  the fitted logistic regression); a ``"residual"`` model trains through the sum. The untrained
  model is never an early-stopping candidate: every epoch count chosen is at least 1.
* Refit (``refit=True``, default): the validation split only chooses the number of epochs; a fresh
  model (same seed) is then trained on **every** training document for that many epochs, so a
  neural method learns from as many documents as the logistic regression it is compared with.
* Optional class-balanced sampling (``WeightedRandomSampler``, weights 1/count, seeded).
* Determinism: ``seed_everything(seed)`` before the model is built, and a dedicated
  ``torch.Generator`` seeded from ``seed`` drives batching and sampling, so one seed gives one
  result on a given machine and device.
* ``on_epoch_end(epoch, val_macro_f1)`` is called after every epoch; it may raise (e.g. Optuna's
  ``TrialPruned``) to abort training, and the exception propagates unchanged.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import logging
import math
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from hilbert_pipeline.cpu_kernels import network_numerics
from hilbert_pipeline.documents import DocumentSet, collate, crop_windows, standardisation
from hilbert_pipeline.errors import UserError
from hilbert_pipeline.folds import stratified_splitter
from hilbert_pipeline.metrics import macro_f1
from hilbert_pipeline.model import MEMBERS, HilbertConfig, HilbertLoss, HilbertModel
from hilbert_pipeline.model.losses import mi_estimates
from hilbert_pipeline.training.logreg import fit_logreg, full_proba, one_blas_thread
from hilbert_pipeline.utils import int_at_least, resolve_device, seed_everything, torch_threads

log = logging.getLogger(__name__)


class TrainingError(UserError):
    """Training parameters or data cannot be trained on."""


#: how the linear member's share is chosen (:func:`linear_weight_from_oof`)
LINEAR_RULES = ("margin", "log_loss")


@dataclass
class TrainingParams:
    """Optimisation settings (model hyper-parameters live in ``HilbertConfig``).

    ``val_fraction``: share of each class held out for early stopping (0 disables early stopping:
    all ``epochs`` run and the last state is kept). ``min_epochs``: early stopping never fires
    before this epoch. ``eval_batch_size``: batch size for validation / prediction.
    ``num_threads``: torch intra-op threads during ``fit`` (None = torch's default). The models
    here are small, so one thread per process is often fastest on a shared or small CPU.
    ``refit``: after early stopping has chosen the epoch count on the inner split, train a fresh
    model on all training documents for that many epochs (see the module docstring).
    ``aux_warmup_epochs``: the auxiliary terms' weights ramp linearly from 0 to their value over
    this many epochs (0 = full weight from the start), so the alignment terms shape a
    representation the classifier has started to organise instead of memorising documents first.
    ``select_on``: what early stopping watches on the inner validation split: ``"macro_f1"``
    or ``"loss"`` (the class-weighted classification loss: smooth where macro-F1 over a few dozen
    documents moves in coarse steps and ties often). ``select_ties``: which epoch wins a tie of
    the watched score: ``"last"`` (the longer-trained state; macro-F1 over a few dozen
    validation documents plateaus for many epochs while the network still learns) or
    ``"first"``. ``weight_average``: in a run without validation documents (a refit, or
    ``val_fraction: 0``), the model kept is the average of its weights at the end of each epoch
    of the last ``weight_average`` share of the run (stochastic weight averaging, Izmailov et al.
    2018: a flatter, less seed-dependent solution than the last state); 0 keeps the last state.
    ``pretrain_epochs``: before supervised training, this many epochs of the alignment terms
    alone (dual contrastive, CKA, MI; instance positives) on the training documents *without
    their labels*, with its own AdamW; the classifier is untouched. 0 = none.
    ``max_steps``: a run on many documents takes fewer epochs, so that it makes at most about
    this many optimiser steps (:meth:`epochs_for`; the learning curve in docs/model.md: on 500
    and 1000 documents, 60 epochs over-trained the network); None = always ``epochs``.
    ``member_folds``: for a network with unimodal members (``HilbertConfig.unimodal_members``),
    the folds of the inner cross-validation on the training documents whose out-of-fold
    predictions of every member (the fused network, the text member and the audio member)
    choose the weights of their average (:func:`choose_member_weights`); 0 = no choice, the
    fused network alone predicts. ``member_floor``: the least weight of the fused network
    (0.5: it always carries at least half of the prediction); ``member_step``: the grid step of
    the weights. ``linear_rule``: how the linear member's share is chosen from the same inner
    cross-validation (:func:`linear_weight_from_oof`): ``"margin"`` (the default: the largest
    share the floor allows, ½, when the regression's out-of-fold macro-F1 is within
    ``linear_margin`` of the network's, else none) or ``"log_loss"`` (the share among 0,
    ``member_step``, ..., ``1 − member_floor`` with the lowest out-of-fold log-loss).
    ``member_max_docs``: with more training documents than this, no inner
    cross-validation runs and the fused network alone predicts (None: always run it). The
    members exist for small corpora, where one modality's document-specific noise (a voice per
    document) lets the fused network learn its training labels from it; on the learning-curve
    corpus of docs/model.md that costs the fused network 0.03 up to 125 documents and nothing
    from 250, while the inner CV costs about 3.5 fits.
    """

    epochs: int = 60
    batch_size: int = 4
    lr: float = 3e-3
    weight_decay: float = 1e-2
    grad_clip: float = 1.0
    patience: int = 6
    min_epochs: int = 3
    val_fraction: float = 0.0
    balanced_sampling: bool = False
    eval_batch_size: int = 64
    device: str = "auto"
    progress: bool = False
    num_threads: int | None = None
    refit: bool = True
    aux_warmup_epochs: int = 0
    select_on: str = "macro_f1"
    select_ties: str = "last"
    weight_average: float = 0.5
    pretrain_epochs: int = 0
    max_steps: int | None = 2500
    member_folds: int = 3
    member_floor: float = 0.5
    member_step: float = 0.25
    linear_rule: str = "margin"
    linear_margin: float = 0.1
    member_max_docs: int | None = 150

    def __post_init__(self) -> None:
        errs = []
        mf = self.member_folds
        if not int_at_least(mf, 0) or mf == 1:
            errs.append(f"member_folds must be 0 (no choice) or an integer >= 2, got {mf!r}")
        for name, lo_open in (("member_floor", False), ("member_step", True),
                              ("linear_margin", False)):
            v = getattr(self, name)
            ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) \
                and (0 < v if lo_open else 0 <= v) and v <= 1
            if not ok:
                errs.append(f"{name} must be in {'(0' if lo_open else '[0'}, 1], got {v!r}")
        if self.linear_rule not in LINEAR_RULES:
            errs.append(f"linear_rule must be one of {', '.join(LINEAR_RULES)}, got "
                        f"{self.linear_rule!r}")
        if not errs and abs(round(1 / self.member_step) * self.member_step - 1) > 1e-9:
            errs.append(f"member_step must divide 1 (0.5, 0.25, 0.2, ...), got "
                        f"{self.member_step!r}")
        for name, lo in (("member_max_docs", 2), ("max_steps", 1)):  # None: no limit
            v = getattr(self, name)
            if v is not None and not int_at_least(v, lo):
                errs.append(f"{name} must be an integer >= {lo} or null, got {v!r}")
        if not int_at_least(self.pretrain_epochs, 0):
            errs.append(f"pretrain_epochs must be an integer >= 0, got {self.pretrain_epochs!r}")
        if self.num_threads is not None and (not isinstance(self.num_threads, int)
                                             or self.num_threads < 1):
            errs.append(f"num_threads must be an integer >= 1 or null, got {self.num_threads!r}")
        if not int_at_least(self.aux_warmup_epochs, 0):
            errs.append(f"aux_warmup_epochs must be an integer >= 0, got {self.aux_warmup_epochs!r}")
        wa = self.weight_average
        if not isinstance(wa, int | float) or isinstance(wa, bool) or not 0 <= wa <= 1:
            errs.append(f"weight_average must be in [0, 1], got {wa!r}")
        if self.select_ties not in ("first", "last"):
            errs.append(f"select_ties must be 'first' or 'last', got {self.select_ties!r}")
        if self.select_on not in ("macro_f1", "loss"):
            errs.append(f"select_on must be 'macro_f1' or 'loss', got {self.select_on!r}")
        if not isinstance(self.refit, bool):
            errs.append(f"refit must be a bool, got {self.refit!r}")
        for name in ("epochs", "batch_size", "patience", "min_epochs", "eval_batch_size"):
            v = getattr(self, name)
            if not int_at_least(v, 1):
                errs.append(f"{name} must be an integer >= 1, got {v!r}")
        if isinstance(self.batch_size, int) and self.batch_size < 2:
            errs.append("batch_size must be >= 2 (the contrastive losses need negatives)")
        for name in ("lr", "weight_decay", "grad_clip"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or isinstance(v, bool) or v < 0 or \
                    not math.isfinite(v):
                errs.append(f"{name} must be a finite number >= 0, got {v!r}")
        if not isinstance(self.val_fraction, int | float) or not 0 <= self.val_fraction < 1:
            errs.append(f"val_fraction must be in [0, 1), got {self.val_fraction!r}")
        if errs:
            raise TrainingError("invalid training parameters: " + "; ".join(errs))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> TrainingParams:
        data = dict(data or {})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise TrainingError(f"unknown training parameters: {unknown} (known: {sorted(names)})")
        return cls(**data)

    def epochs_for(self, n_docs: int) -> int:
        """The epochs a run on ``n_docs`` training documents makes: ``epochs``, cut so that
        the run makes about ``max_steps`` optimiser steps at most (never fewer than 1)."""
        if self.max_steps is None or n_docs <= 0:
            return self.epochs
        per_epoch = math.ceil(n_docs / self.batch_size)
        if per_epoch > 1 and n_docs % self.batch_size == 1:  # a batch of one joins the previous
            per_epoch -= 1
        return max(1, min(self.epochs, math.ceil(self.max_steps / per_epoch)))

    def replace(self, **changes: Any) -> TrainingParams:
        return TrainingParams.from_dict({**self.to_dict(), **changes})


@dataclass
class FitResult:
    """A trained model and its per-epoch history.

    ``model``: the refit model (``refit_epochs`` set) or the selection run's best state."""

    model: HilbertModel  # holds the learned temperature
    config: HilbertConfig
    history: pd.DataFrame  # the epoch-selection run (with inner-validation scores)
    best_epoch: int
    best_val_macro_f1: float | None
    train_doc_ids: list[str]
    val_doc_ids: list[str]
    label_names: list[str]
    training_params: TrainingParams
    seconds: float
    refit_epochs: int | None = None  # epochs of the refit on every training document (None: none)
    members: dict[str, Any] | None = None  # the member weights' choice (choose_member_weights)


def inner_split(docs: DocumentSet, val_fraction: float, seed: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train/validation positions: per class ``round(val_fraction * n_c)`` documents
    (at least one when ``n_c >= 2`` and ``val_fraction > 0``), never the class's last document.

    With groups (``docs.groups``), whole groups go to one side, as in the outer folds: the
    validation part is one fold of a seeded ``StratifiedGroupKFold`` with
    ``round(1 / val_fraction)`` folds, so a speaker never sits on both sides of the split that
    chooses the epoch count."""
    if docs.groups is not None and val_fraction > 0:
        return _grouped_inner_split(docs, val_fraction, seed)
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in range(docs.n_classes):
        idx = np.flatnonzero(docs.labels == c)
        if len(idx) == 0:
            continue
        idx = rng.permutation(idx)
        n_val = 0
        if val_fraction > 0 and len(idx) >= 2:
            n_val = min(max(1, round(val_fraction * len(idx))), len(idx) - 1)
        val += idx[:n_val].tolist()
        train += idx[n_val:].tolist()
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(val, dtype=np.int64))


def _grouped_inner_split(docs: DocumentSet, val_fraction: float, seed: int
                         ) -> tuple[np.ndarray, np.ndarray]:


    n_groups = len(set(docs.groups.tolist()))
    k = min(max(2, round(1.0 / val_fraction)), n_groups)
    if k < 2:  # a single group cannot be split without mixing it
        return np.arange(len(docs), dtype=np.int64), np.zeros(0, dtype=np.int64)
    with warnings.catch_warnings():  # "least populated class" warnings: expected for small data
        warnings.simplefilter("ignore", UserWarning)
        splitter = stratified_splitter(k, docs.groups, seed)
        tr, va = next(splitter.split(np.zeros((len(docs), 1)), docs.labels, groups=docs.groups))
    return np.sort(tr).astype(np.int64), np.sort(va).astype(np.int64)


def _batches(n: int, batch_size: int, generator, weights: np.ndarray | None) -> list[list[int]]:
    """Index batches for one epoch (shuffled, or class-balanced sampling with replacement)."""

    if weights is not None:
        order = torch.multinomial(torch.as_tensor(weights, dtype=torch.double), n,
                                  replacement=True, generator=generator).tolist()
    else:
        order = torch.randperm(n, generator=generator).tolist()
    batches = [order[i:i + batch_size] for i in range(0, n, batch_size)]
    if len(batches) > 1 and len(batches[-1]) == 1:
        last = batches.pop()
        batches[-1] = batches[-1] + last
    return batches


def _to_device(batch: dict[str, Any], device) -> dict[str, Any]:
    return {k: v.to(device) for k, v in batch.items()}


def _forward(model, batch):
    return model(batch["audio"], batch["text"], batch["audio_mask"], batch["text_mask"])


def eval_batches(model, docs: DocumentSet, batch_size: int, device=None, items=None):
    """The one eval-mode loop: ``(positions, batch, output)`` per chunk of ``batch_size``
    documents, without gradients; the model's train/eval mode is restored afterwards.
    ``items``: ``(document position, (start, stop))`` pairs to run instead of whole documents
    (segment windows; positions are then indices into ``items``)."""

    dev = next(model.parameters()).device if device is None else resolve_device(device)
    model.to(dev)
    was_training = model.training
    model.eval()
    n = len(docs) if items is None else len(items)
    try:
        with torch.inference_mode(), network_numerics():
            for i in range(0, n, batch_size):
                idx = range(i, min(i + batch_size, n))
                if items is None:
                    batch = collate(docs, idx)
                else:
                    batch = collate(docs, [items[k][0] for k in idx], [items[k][1] for k in idx])
                batch = _to_device(batch, dev)
                yield idx, batch, _forward(model, batch)
    finally:
        model.train(was_training)


def softmax(out, head: bool = False) -> np.ndarray:
    """Class probabilities of a forward output (with ``head``: of the deep head's own logits),
    float32 on the CPU."""

    return probabilities(out.head_logits if head else out.logits)


def probabilities(logits: torch.Tensor) -> np.ndarray:
    """Class probabilities of logits ``(B, C)``, float32 on the CPU."""

    return torch.softmax(logits.float(), dim=-1).cpu().numpy()


def predict(model, docs: DocumentSet, batch_size: int = 64, device: str | None = None,
            return_gate: bool = False, member: bool = False):
    """Class probabilities ``(D, C)`` (float64) in ``docs`` order; with ``return_gate`` also the
    per-document MoE gate weights ``(D, K)``. ``member``: the network's own probabilities
    (before a linear member is combined with them)."""

    def pick(out) -> dict[str, np.ndarray]:
        return {"proba": softmax(out, head=member), "gate": out.gate.float().cpu().numpy()}

    res = _collect(model, docs, batch_size, device, pick)
    return (res["proba"], res["gate"]) if return_gate else res["proba"]


def _collect(model, docs: DocumentSet, batch_size: int, device: str | None,
             pick: Callable[[Any], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """One eval-mode pass over ``docs``: the arrays ``pick(output)`` takes from each batch's
    output, per document in ``docs`` order (float64). With ``crop_segments`` and a document
    longer than the crop, multi-crop prediction: each document's mean over its
    :func:`crop_windows`."""
    crop = int(getattr(model.config, "crop_segments", 0) or 0)
    items = None
    if crop and any(a.shape[0] > crop for a in docs.audio):
        items = [(i, w) for i in range(len(docs))
                 for w in crop_windows(docs.audio[i].shape[0], crop)]
    parts: dict[str, list[np.ndarray]] = {}
    for _, _, out in eval_batches(model, docs, batch_size, device, items):
        for name, arr in pick(out).items():
            parts.setdefault(name, []).append(arr)
    res = {name: np.concatenate(arrs).astype(np.float64) for name, arrs in parts.items()}
    if items is None:
        return res
    owner = np.array([i for i, _ in items])
    return {name: np.stack([arr[owner == i].mean(axis=0) for i in range(len(docs))])
            for name, arr in res.items()}


def _with_diagnostics(terms: dict, output) -> dict:
    """Loss terms and, apart from them in the model library, the MI estimates."""

    return {**terms, **mi_estimates(output)}


def loss_terms(model, docs: DocumentSet, device: str | None = None) -> dict[str, float]:
    """Every loss term (unweighted classes) and both MI estimates on ``docs`` as one batch, in
    eval mode."""

    loss_fn = HilbertLoss(model.config)
    terms: dict = {}
    for _, batch, out in eval_batches(model, docs, max(len(docs), 1), device):
        terms = _with_diagnostics(loss_fn.to(out.logits.device)(out, batch["labels"]), out)
    return {k: float(v.detach().cpu()) for k, v in terms.items()}


def _validate(model, loss_fn, docs: DocumentSet, batch_size: int
              ) -> tuple[np.ndarray, dict[str, float]]:
    """One eval-mode pass over ``docs``: probabilities and every loss term + MI estimate.

    Loss terms are averaged over chunks of ``batch_size`` documents (weighted by chunk size);
    chunks of fewer than 4 documents give no terms (the contrastive/CKA terms need a few).
    The probabilities are those the trained part is selected on: the deep member's own for a
    wide-path mixture (``wide_combine="mixture"``), the model's otherwise.
    """
    member = model.config.prediction.network_on_its_own
    probs, sums, seen = [], {}, {}
    for idx, batch, out in eval_batches(model, docs, batch_size):
        probs.append(softmax(out, head=member))
        if len(idx) >= 4:
            terms = _with_diagnostics(loss_fn(out, batch["labels"]), out)
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v) * len(idx)
                seen[k] = seen.get(k, 0) + len(idx)
    return (np.concatenate(probs).astype(np.float64),
            {k: v / seen[k] for k, v in sums.items()})


def fit(cfg, train_docs: DocumentSet, val_docs: DocumentSet | None,
        tp: TrainingParams, seed: int,
        on_epoch_end: Callable[[int, float | None], None] | None = None,
        monitor_docs: DocumentSet | None = None) -> FitResult:
    """Train a :class:`HilbertModel` from the ``HilbertConfig`` ``cfg`` with ``tp``.

    ``val_docs=None`` splits ``train_docs`` with :func:`inner_split` (``val_fraction``, ``seed``)
    and, with ``tp.refit``, retrains on all of ``train_docs`` for the chosen number of
    epochs; pass explicit ``val_docs`` to control the split yourself (no refit then: the caller
    scores on those documents). ``monitor_docs``: without validation documents, the macro-F1 on
    these documents after each epoch is what ``on_epoch_end`` receives (an Optuna pruner's
    intermediate value); it never selects an epoch or a state. ``cfg.n_classes`` must equal
    ``train_docs.n_classes``; feature widths must match the documents.
    """
    t0 = time.perf_counter()
    if cfg.n_classes != train_docs.n_classes:
        raise TrainingError(f"config.n_classes={cfg.n_classes} but the documents have "
                            f"{train_docs.n_classes} classes {train_docs.label_names}")
    all_docs, refit = train_docs, False
    if val_docs is None:
        tr_idx, va_idx = inner_split(train_docs, tp.val_fraction, seed)
        val_docs = train_docs.subset(va_idx)
        train_docs = train_docs.subset(tr_idx)
        refit = tp.refit and len(val_docs) > 0
    if len(train_docs) < 2:
        raise TrainingError(f"need at least 2 training documents, got {len(train_docs)}")
    if not cfg.prediction.trains_network:  # nothing to train
        with torch_threads(tp.num_threads), network_numerics():
            run = _Run(cfg, all_docs, all_docs.subset([]), tp, seed)
            run.track({"epoch": 0, "temperature": float(run.model.temperature.detach())}, 0)
            model, history, _, _ = run.finish()
        return FitResult(model=model, config=cfg, history=history, best_epoch=0,
                         best_val_macro_f1=None, train_doc_ids=list(all_docs.doc_ids),
                         val_doc_ids=[], label_names=list(all_docs.label_names),
                         training_params=tp, seconds=time.perf_counter() - t0)
    with torch_threads(tp.num_threads), network_numerics():
        fitted_on = all_docs if refit else train_docs
        members = choose_member_weights(cfg, fitted_on, tp, seed) if chooses_weights(cfg) \
            else None
        # unimodal members that took no weight are not trained: the fused network trains
        # exactly as without them, so the prediction is the same and their cost is saved
        train_cfg = cfg
        if cfg.has_members and not any(members["weights"][m] for m in MEMBERS[1:]):
            train_cfg = cfg.replace(unimodal_members=False)
        # a mixture's deep member is selected on its own logits: the wide path of a run that
        # the refit replaces is never used, and its inner-CV search is skipped
        run = _train(train_cfg, train_docs, val_docs, tp, seed, on_epoch_end,
                     tp.epochs_for(len(train_docs)),
                     fit_wide=not (refit and cfg.prediction.network_on_its_own), monitor_docs=monitor_docs)
        model, history, best_epoch, best_f1 = run
        refit_epochs = None
        if refit:
            refit_epochs = best_epoch
            model, _, _, _ = _train(train_cfg, all_docs, all_docs.subset([]), tp, seed, None,
                                    refit_epochs, desc="refit")
        if members is not None:
            if cfg.has_members:
                if train_cfg is not cfg:
                    model = _with_members(cfg, model)
                model.set_member_weights([members["weights"][m] for m in MEMBERS])
            if members.get("linear") is not None:
                model.set_wide_weight(members["linear"])
            members = {**members, "trained": train_cfg is cfg}
    return FitResult(model=model, config=cfg, history=history, best_epoch=best_epoch,
                     best_val_macro_f1=best_f1,
                     train_doc_ids=list(fitted_on.doc_ids),
                     val_doc_ids=list(val_docs.doc_ids), label_names=list(all_docs.label_names),
                     training_params=tp, seconds=time.perf_counter() - t0,
                     refit_epochs=refit_epochs, members=members)


def _with_members(cfg: HilbertConfig, fused: HilbertModel) -> HilbertModel:
    """A network with members (``cfg``) holding the trained fused network ``fused``; its
    unimodal members stay as initialised (they are given weight 0)."""
    model = HilbertModel(cfg)
    missing, unexpected = model.load_state_dict(fused.state_dict(), strict=False)
    if unexpected or any(not (k.startswith("members.") or k == "member_weights")
                         for k in missing):
        raise TrainingError(f"cannot add members to the fused network: missing {missing}, "
                            f"unexpected {unexpected}")
    return model.to(next(fused.parameters()).device).train(fused.training)


def chooses_weights(cfg: HilbertConfig) -> bool:
    """Whether a fit runs :func:`choose_member_weights`: the network has unimodal members, or
    its linear member's weight is ``"auto"``."""
    return cfg.has_members or cfg.wide_weight_by_cv


def member_grid(step: float, floor: float) -> list[tuple[float, ...]]:
    """Every weight vector (fused, text, audio) on the simplex in steps of ``step`` whose fused
    weight is at least ``floor``, the fused network alone first."""
    n = round(1 / step)
    grid = [(i / n, j / n, (n - i - j) / n) for i in range(n, -1, -1) for j in range(n - i, -1, -1)]
    return [w for w in grid if w[0] >= floor - 1e-9]


def _log_loss(labels: np.ndarray, proba: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(proba[np.arange(len(labels)), labels], 1e-12, 1.0))))


def member_probabilities(model, docs: DocumentSet, batch_size: int = 64,
                         device: str | None = None) -> dict[str, np.ndarray]:
    """Each member's own class probabilities ``{"fused", "text", "audio": (D, C)}`` of a network
    with unimodal members, from one pass: the fused network's logits and each unimodal
    member's (whatever the model's member weights)."""
    if not model.config.has_members:
        raise ValueError("member_probabilities needs a model with unimodal_members")

    def pick(out) -> dict[str, np.ndarray]:
        logits = {MEMBERS[0]: out.fused_logits,
                  **{m: out.members[m].head_logits for m in MEMBERS[1:]}}
        return {m: probabilities(x) for m, x in logits.items()}

    return _collect(model, docs, batch_size, device, pick)


def choose_member_weights(cfg: HilbertConfig, docs: DocumentSet, tp: TrainingParams,
                          seed: int) -> dict[str, Any]:
    """The weights (fused, text, audio) of a network's members, chosen from evidence about
    every member: a ``tp.member_folds``-fold stratified (grouped) cross-validation on ``docs``
    trains the whole network (its linear member left out) on each training part with the same
    settings and seed, and predicts the held-out part with every member. A unimodal member is
    *admitted* when its own out-of-fold macro-F1 is at least the fused network's; among the
    weights of :func:`member_grid` that give weight to admitted members only, the one whose
    average has the lowest out-of-fold log-loss wins (a tie goes to the larger fused weight).
    More than ``tp.member_max_docs`` documents: no inner CV, the fused network alone.
    The gate keeps the inner folds' bias from costing the fused network: trained on a part of
    the documents it is weaker than on all of them, more so than a unimodal member, and the
    log-loss of a mixture rewards any hedging. The fused network alone (1, 0, 0) when
    ``member_folds`` is 0 or the documents are too few for the folds (fewer than 2 per fold,
    or a class smaller than 2). With a linear member of weight ``"auto"``
    (:func:`chooses_weights`), each inner fold also fits the regression the fit would build
    (:func:`_wide_selection` on the fold's training part) and predicts the held-out part; the
    member's weight then comes from :func:`linear_weight_from_oof` on those predictions and
    the network's (its members averaged with the chosen weights; ``tp.linear_rule`` and
    ``tp.linear_margin``); 0 (the network alone) where
    no inner cross-validation runs. Returns ``{"weights": {member: w}, "folds": k,
    "log_loss": {member: out-of-fold log-loss, ..., "chosen": ...}, "macro_f1": {member:
    out-of-fold macro-F1}, "admitted": [members], "reason": why nothing was chosen or None,
    "linear": the linear member's weight, or None without an "auto" one, "fused_linear": the
    weight chosen against the fused network alone (what the network without members would
    choose), or None}`` (with an "auto" weight chosen by the inner CV, also
    ``"linear_log_loss"``, ``"linear_macro_f1"`` and ``"network_macro_f1"``)."""
    auto = cfg.wide_weight_by_cv
    alone = {"weights": dict(zip(MEMBERS, (1.0, 0.0, 0.0), strict=True)), "folds": 0,
             "log_loss": {}, "macro_f1": {}, "admitted": [], "reason": None,
             "linear": 0.0 if auto else None, "fused_linear": 0.0 if auto else None}
    k = tp.member_folds
    counts = docs.class_counts()
    present = counts[counts > 0]
    if k == 0:
        return {**alone, "reason": "member_folds is 0"}
    if tp.member_max_docs is not None and len(docs) > tp.member_max_docs:
        return {**alone, "reason": f"{len(docs)} training documents, more than member_max_docs "
                                   f"({tp.member_max_docs})"}
    if len(docs) < 2 * k or present.min() < 2 or (present >= k).sum() == 0:
        return {**alone, "reason": f"too few documents ({len(docs)}, smallest class "
                                   f"{int(present.min())}) for {k} member folds"}
    inner_cfg = cfg.replace(wide_path=False)
    itp = tp.replace(val_fraction=0.0)
    n = len(docs)
    oof = {m: np.zeros((n, docs.n_classes)) for m in MEMBERS}
    linear = np.zeros((n, docs.n_classes))
    splitter = stratified_splitter(k, docs.groups, seed)
    with warnings.catch_warnings():  # a class smaller than k: sklearn warns, the split holds
        warnings.filterwarnings("ignore", message="The least populated class",
                                category=UserWarning)
        splits = list(splitter.split(np.zeros(n), docs.labels, docs.groups))
    for i, (a, b) in enumerate(splits, start=1):
        if len(a) < 2 or len(b) == 0:
            return {**alone, "reason": f"member fold {i} has {len(a)} training documents"}
        part = docs.subset(a)
        model, *_ = _train(inner_cfg, part, part.subset([]), itp, seed, None,
                           itp.epochs_for(len(part)), desc=f"members {i}/{k}")
        held_out = docs.subset(b)
        if inner_cfg.has_members:
            for m, p in member_probabilities(model, held_out, tp.eval_batch_size).items():
                oof[m][b] = p
        else:  # a network without members: the fused network alone
            oof[MEMBERS[0]][b] = predict(model, held_out, tp.eval_batch_size)
        if auto:  # the linear member as the fit would build it on this part
            linear[b] = linear_member_probabilities(part, held_out, cfg.pooled_modalities,
                                                    cfg.class_weight_power, seed)
    if inner_cfg.has_members:
        chosen = weights_from_oof(docs.labels, oof, tp.member_step, tp.member_floor)
    else:
        chosen = {"weights": alone["weights"],
                  "log_loss": {MEMBERS[0]: _log_loss(docs.labels, oof[MEMBERS[0]])},
                  "macro_f1": {MEMBERS[0]: macro_f1(docs.labels, oof[MEMBERS[0]])},
                  "admitted": []}
    res = {**chosen, "folds": k, "reason": None, "linear": None, "fused_linear": None}
    if auto:
        network = sum(w * oof[m] for m, w in chosen["weights"].items())
        rule = {"step": tp.member_step, "floor": tp.member_floor, "rule": tp.linear_rule,
                "margin": tp.linear_margin}
        res.update(linear_weight_from_oof(docs.labels, network, linear, **rule))
        # the weight the same network without members would choose: its inner CV trains the
        # same fused networks on the same folds (the ``no_members`` view of this fit)
        res["fused_linear"] = linear_weight_from_oof(docs.labels, oof[MEMBERS[0]], linear,
                                                     **rule)["linear"]
    return res


def linear_weight_grid(step: float, floor: float) -> list[float]:
    """The linear member's candidate weights: 0, ``step``, ..., up to ``1 − floor`` (the
    network keeps at least ``floor``), the network's side first."""
    n = round(1 / step)
    return [i / n for i in range(n + 1) if i / n <= 1 - floor + 1e-9]


def linear_weight_from_oof(labels: np.ndarray, network: np.ndarray, linear: np.ndarray,
                           step: float, floor: float, rule: str = "margin",
                           margin: float = 0.1) -> dict[str, Any]:
    """The linear member's weight ``w`` in ``(1 − w) · network + w · linear`` from the
    out-of-fold probabilities of the network (its members already averaged) and of the
    regression. ``rule="margin"`` (the default): the largest weight of the grid 0, ``step``,
    ..., ``1 − floor`` (½ by default: the plain average) when the regression's out-of-fold
    macro-F1 is at least the network's minus ``margin``, else 0 (the network alone): where
    the evidence cannot tell the two apart, the equal average, which on 50–150 documents beats
    weights fitted to the same noisy inner folds; where the regression is clearly worse (a
    label the pooled features cannot see), none of it. ``rule="log_loss"``: the grid weight
    with the lowest out-of-fold log-loss, a tie to the smaller weight (the network).
    docs/model.md ("Member weights, replayed" and "The linear member's share by a margin")
    has the measurements of both. Returns
    ``{"linear": w, "linear_log_loss": {w: log-loss}, "linear_macro_f1": the regression's
    out-of-fold macro-F1, "network_macro_f1": the network's}``."""
    if rule not in LINEAR_RULES:
        raise ValueError(f"rule must be one of {LINEAR_RULES}, got {rule!r}")
    grid = linear_weight_grid(step, floor)
    losses = {w: _log_loss(labels, (1 - w) * network + w * linear) for w in grid}
    f1_net, f1_lin = macro_f1(labels, network), macro_f1(labels, linear)
    if rule == "margin":
        best = grid[-1] if f1_lin >= f1_net - margin - 1e-12 else grid[0]
    else:
        best = grid[0]
        for w in grid[1:]:
            if losses[w] < losses[best] - 1e-12:
                best = w
    return {"linear": best, "linear_log_loss": {f"{w:g}": v for w, v in losses.items()},
            "linear_macro_f1": f1_lin, "network_macro_f1": f1_net}


def weights_from_oof(labels: np.ndarray, oof: dict[str, np.ndarray], step: float,
                     floor: float) -> dict[str, Any]:
    """The members' weights from their out-of-fold probabilities ``oof`` ({member: (D, C)}):
    the rule of :func:`choose_member_weights` (a unimodal member is admitted when its macro-F1
    is at least the fused network's; the lowest log-loss over the grid weights that give
    weight to admitted members only; a tie to the larger fused weight)."""
    losses = {m: _log_loss(labels, oof[m]) for m in MEMBERS}
    f1 = {m: macro_f1(labels, oof[m]) for m in MEMBERS}
    # a member may take weight only where, out of fold, it alone scores at least the fused
    # network's macro-F1: the held-out documents then say that the other modality adds nothing
    admitted = {m for m in MEMBERS[1:] if f1[m] >= f1[MEMBERS[0]]}
    best = None
    for w in member_grid(step, floor):
        if any(wi > 0 and m not in admitted for wi, m in zip(w[1:], MEMBERS[1:], strict=True)):
            continue
        mix = sum(wi * oof[m] for wi, m in zip(w, MEMBERS, strict=True))
        score = _log_loss(labels, mix)
        if best is None or score < best[0] - 1e-12:
            best = (score, w)
    return {"weights": dict(zip(MEMBERS, best[1], strict=True)),
            "log_loss": {**losses, "chosen": best[0]}, "macro_f1": f1,
            "admitted": sorted(admitted)}


def _param_groups(model) -> list[dict[str, Any]]:
    """AdamW groups: weight decay on matrices only; biases, norms, the "missing" embeddings and
    the log-temperature are not decayed (as in open_clip: decaying ``log tau`` pulls the
    temperature toward 1 for no reason)."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    return [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]


def _init_wide_path(model, docs: DocumentSet, seed: int, fit_wide: bool = True) -> None:
    """Standardisation stats of the linear member from ``docs``; with ``wide_init="logreg"``
    (and ``fit_wide``) also its weights, from the logistic-regression baseline fitted on the same
    documents."""

    mods = model.pooled_modalities
    pooled = docs.pooled_features(mods)
    model.set_pooled_stats(pooled.mean(axis=0), pooled.std(axis=0))
    if model.config.wide_init != "logreg" or not fit_wide:
        return
    weight, bias = _wide_logreg(docs, pooled, mods, model.config.class_weight_power, seed,
                                model.pooled_std.numpy())
    with torch.no_grad():
        model.wide.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
        model.wide.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
        model.wide.requires_grad_(model.config.wide_trainable)


#: (content hash, modalities, class-weight power, seed) -> (fitted pipeline, chosen modalities)
#: of the wide path. Every neural method of an evaluation fold trains on the same documents with
#: the same seed, so the inner-CV search (3 modality subsets x 5 C x 15 fits) runs once per fold
#: and process, not once per method.
_WIDE_CACHE: dict[tuple, tuple[Any, tuple[str, ...]]] = {}


def _wide_selection(docs: DocumentSet, pooled: np.ndarray, mods: tuple[str, ...], power: float,
                    seed: int) -> tuple[Any, tuple[str, ...]]:
    """The logistic regression (scaler + model) whose modalities (all, or one) and C win a
    3 x 5-fold repeated inner CV on ``docs``, and the modalities it reads. A modality absent
    from every document of ``docs`` is not a candidate."""


    h = hashlib.sha1(pooled.tobytes())
    h.update(docs.labels.tobytes())
    if docs.groups is not None:
        h.update("\0".join(map(str, docs.groups)).encode())
    key = (h.hexdigest(), mods, float(power), int(seed))
    if key in _WIDE_CACHE:
        return _WIDE_CACHE[key]
    # a modality that no training document has cannot carry signal: never a candidate (with
    # identical scores, "both" would otherwise win the tie against the modality that exists)
    masks = {"audio": docs.audio_mask, "text": docs.text_mask}
    present = tuple(m for m in mods if any(mk.any() for mk in masks[m])) or mods
    best = None
    for subset in ([present] + [(m,) for m in present] if len(present) > 1 else [present]):
        clf, _, score = fit_logreg(docs, seed, modalities=subset, class_weight_power=power,
                                   inner_repeats=3)
        score = -np.inf if score is None else score  # too few documents to choose: keep all
        if best is None or score > best[2] + 1e-12:
            best = (clf, subset, score)
    if len(_WIDE_CACHE) >= 64:
        _WIDE_CACHE.pop(next(iter(_WIDE_CACHE)))
    _WIDE_CACHE[key] = best[:2]
    return _WIDE_CACHE[key]


def _wide_logreg(docs: DocumentSet, pooled: np.ndarray, mods: tuple[str, ...], power: float,
                 seed: int, std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Wide-path weights ``(C, width)`` and bias: the logistic regression of
    :func:`_wide_selection` expressed on the model's standardised inputs (columns of an
    unchosen modality are 0)."""
    clf, subset = _wide_selection(docs, pooled, mods, power, seed)
    widths = {"audio": docs.audio_dim, "text": docs.text_dim}
    starts = np.cumsum([0] + [widths[m] for m in mods])
    cols = np.concatenate([np.arange(starts[mods.index(m)], starts[mods.index(m) + 1])
                           for m in subset])
    scaler, lr = clf[0], clf[-1]
    coef = np.zeros((docs.n_classes, len(cols)))
    bias = np.zeros(docs.n_classes)
    classes = np.asarray(lr.classes_, dtype=np.int64)
    if len(classes) == 2 and lr.coef_.shape[0] == 1:  # binary: one row for the positive class
        coef[classes[1]], bias[classes[1]] = lr.coef_[0], lr.intercept_[0]
    else:
        coef[classes], bias[classes] = lr.coef_, lr.intercept_
    bias[np.setdiff1d(np.arange(docs.n_classes), classes)] = -30.0  # absent class: never
    # the scaler's std may differ from the model's only where a column is constant
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0) / std[cols]
    weight = np.zeros((docs.n_classes, pooled.shape[1]))
    weight[:, cols] = coef / scale
    return weight, bias


def teacher_probabilities(docs: DocumentSet, mods: tuple[str, ...], power: float,
                          seed: int) -> np.ndarray:
    """Distillation targets ``(len(docs), C)``: the class probabilities that the logistic
    regression of :func:`_wide_selection` (modalities among ``mods`` and C by repeated inner CV
    on ``docs``, the linear member's fit) gives the documents it was fitted on. A class absent
    from ``docs`` gets probability 0. Where the inner CV keeps the regression close to the
    labels, these are nearly the labels; where it shrinks the regression hard (a label spread
    thinly over every segment), they are soft."""

    return linear_member_probabilities(docs, docs, mods, power, seed)


def linear_member_probabilities(fit_docs: DocumentSet, pred_docs: DocumentSet,
                                mods: tuple[str, ...], power: float, seed: int) -> np.ndarray:
    """Class probabilities ``(len(pred_docs), C)`` that the logistic regression of
    :func:`_wide_selection` fitted on ``fit_docs`` (modalities among ``mods`` and C by repeated
    inner CV: the linear member's fit) gives ``pred_docs``; a class absent from ``fit_docs``
    gets probability 0. On one BLAS thread, as every regression fit here."""
    clf, subset = _wide_selection(fit_docs, fit_docs.pooled_features(mods), mods, power, seed)
    with one_blas_thread():
        return full_proba(clf[-1], clf.predict_proba(pred_docs.pooled_features(subset)),
                          fit_docs.n_classes)


def _aux_scale(epoch: int, warmup: int) -> float:
    """Linear warm-up factor of the auxiliary loss weights for 1-based ``epoch``."""
    return 1.0 if warmup <= 0 else min(1.0, epoch / (warmup + 1))


class _Run:
    """One training run's state: model, loss, optimiser, sampler, history and the best epoch."""

    def __init__(self, cfg, train_docs: DocumentSet, val_docs: DocumentSet, tp: TrainingParams,
                 seed: int, fit_wide: bool = True) -> None:


        seed_everything(seed)
        self.device = resolve_device(tp.device)
        model = HilbertModel(cfg)
        for m in model.proj:
            segments = train_docs.real_segments(m)  # stacked once for both statistics
            if cfg.input_norm == "standardize":
                model.set_segment_stats(m, *standardisation(segments))
            if cfg.principal_init > 0:
                model.init_principal_projections(m, segments)
        if cfg.prediction.linear_member:
            _init_wide_path(model, train_docs, seed, fit_wide)
        self.model = model.to(self.device)
        counts = train_docs.class_counts()
        # distillation targets by the modalities each network reads: the fused network's
        # regression chooses among both modalities and each alone, a member's reads its own
        self.teacher: dict[str, torch.Tensor] | None = None
        if cfg.distill_weight > 0 and cfg.prediction.trains_network:
            reads = {cfg.modalities: model.pooled_modalities}
            reads.update({m: (m,) for m in getattr(model, "members", {})})
            self.teacher = {k: torch.as_tensor(teacher_probabilities(
                train_docs, mods, cfg.class_weight_power, seed), dtype=torch.float32,
                device=self.device) for k, mods in reads.items()}
        self.loss_fn = HilbertLoss(cfg, class_counts=torch.as_tensor(counts, dtype=torch.float32)
                                   ).to(self.device)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        # gradients clipped per member: the fused network's steps do not depend on its members
        members = getattr(self.model, "members", {})
        own = {id(p) for mm in members.values() for p in mm.parameters()}
        self.clip_groups = [[p for p in self.params if id(p) not in own]] + [
            [p for p in mm.parameters() if p.requires_grad] for mm in members.values()]
        # foreach: one fused update over all parameters; the default single-tensor loop on CPU
        # costs more than the model's forward pass at the small widths used here
        self.opt = torch.optim.AdamW(_param_groups(self.model), lr=tp.lr,
                                     weight_decay=tp.weight_decay, foreach=True)
        self.gen = torch.Generator().manual_seed(int(seed))
        self.weights = (1.0 / np.maximum(counts[train_docs.labels], 1)
                        if tp.balanced_sampling else None)
        self.cfg, self.train_docs, self.val_docs, self.tp = cfg, train_docs, val_docs, tp
        self.history: list[dict[str, Any]] = []
        self.best_f1: float | None = None
        self.best_score: float | None = None
        self.best_epoch = 0
        self.best_state = None
        self.avg_state: dict | None = None
        self.n_avg = 0

    def track(self, row: dict[str, Any], stale: int) -> tuple[float | None, int]:
        """Validate, append ``row`` to the history, keep the best state; new stale count."""
        val_f1 = None
        if len(self.val_docs) > 0:
            proba, vterms = _validate(self.model, self.loss_fn, self.val_docs,
                                      self.tp.eval_batch_size)
            val_f1 = macro_f1(self.val_docs.labels, proba)
            row.update({f"val_{k}": v for k, v in vterms.items()})
        row["val_macro_f1"] = val_f1
        self.history.append(row)
        score = val_f1
        if val_f1 is not None and self.tp.select_on == "loss" and "val_cls" in row:
            score = -row["val_cls"]
        first = score is None or self.best_score is None
        better = first or score > self.best_score
        tie = not first and score == self.best_score and self.tp.select_ties == "last"
        if better or tie:  # a tie keeps the later state but does not reset the patience
            self.best_score, self.best_f1, self.best_epoch = score, val_f1, row["epoch"]
            self.best_state = copy.deepcopy(self.model.state_dict())
        return val_f1, 0 if better else stale + 1

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        """One pass over the training documents; the epoch's mean of every term."""

        self.model.train()
        scale = _aux_scale(epoch, self.tp.aux_warmup_epochs)
        sums: dict[str, float] = {}
        seen: dict[str, int] = {}  # a term may be skipped in some batches
        for idx in _batches(len(self.train_docs), self.tp.batch_size, self.gen, self.weights):
            batch = _to_device(collate(self.train_docs, idx, self.crops(self.train_docs, idx)),
                               self.device)
            teacher = None if self.teacher is None else {
                k: t[torch.as_tensor(idx, device=self.device)] for k, t in self.teacher.items()}
            output = _forward(self.model, batch)
            terms = self.loss_fn(output, batch["labels"], aux_scale=scale, teacher=teacher)
            self.opt.zero_grad(set_to_none=True)
            terms["total"].backward()
            if self.tp.grad_clip > 0:
                for group in self.clip_groups:
                    torch.nn.utils.clip_grad_norm_(group, self.tp.grad_clip)
            self.opt.step()
            terms = _with_diagnostics(terms, output)
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach()) * len(idx)
                seen[k] = seen.get(k, 0) + len(idx)
        row: dict[str, Any] = {"epoch": epoch}
        row.update({f"train_{k}": v / seen[k] for k, v in sums.items()})
        row["temperature"] = float(self.model.temperature.detach())
        return row

    def crops(self, docs: DocumentSet, idx) -> list[tuple[int, int]] | None:
        """Random windows of ``crop_segments`` consecutive segments (None: whole documents),
        drawn from the run's generator."""

        length = self.cfg.crop_segments
        if not length:
            return None
        spans = []
        for i in idx:
            n = docs.audio[i].shape[0]
            start = 0
            if n > length:
                start = int(torch.randint(0, n - length + 1, (1,), generator=self.gen))
            spans.append((start, min(n, start + length)))
        return spans

    def pretrain(self, docs: DocumentSet, epochs: int) -> list[dict[str, float]]:
        """``epochs`` of the alignment terms alone on ``docs``, whose labels are never read
        (``labels=None``), with a fresh AdamW; the mean terms of each epoch."""

        if epochs <= 0 or len(docs) < 2:
            return []
        self.model.train()
        opt = torch.optim.AdamW(_param_groups(self.model), lr=self.tp.lr,
                                weight_decay=self.tp.weight_decay, foreach=True)
        rows = []
        for _ in range(epochs):
            sums: dict[str, float] = {}
            for idx in _batches(len(docs), self.tp.batch_size, self.gen, None):
                batch = collate(docs, idx, self.crops(docs, idx))
                batch.pop("labels")
                batch = _to_device(batch, self.device)
                terms = self.loss_fn(_forward(self.model, batch), None)
                if not terms["total"].requires_grad:  # no alignment term in this batch
                    continue
                opt.zero_grad(set_to_none=True)
                terms["total"].backward()
                if self.tp.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(self.params, self.tp.grad_clip)
                opt.step()
                for k, v in terms.items():
                    sums[k] = sums.get(k, 0.0) + float(v.detach()) * len(idx)
            rows.append({k: v / len(docs) for k, v in sums.items()})
        return rows

    def accumulate(self) -> None:
        """Add the current weights to the running average (``weight_average``)."""
        state = self.model.state_dict()
        if self.avg_state is None:
            self.avg_state = {k: v.detach().clone().double() if v.is_floating_point() else v
                              for k, v in state.items()}
            self.n_avg = 1
            return
        self.n_avg += 1
        for k, v in state.items():
            if v.is_floating_point():
                self.avg_state[k] += (v.detach().double() - self.avg_state[k]) / self.n_avg

    def finish(self):
        """``(model with the best state restored, history, best_epoch, best_f1)``."""
        if self.avg_state is not None:
            self.best_state = {k: v.to(self.model.state_dict()[k].dtype)
                               for k, v in self.avg_state.items()}
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)  # the temperature is restored with it
        self.model.eval()
        hist = pd.DataFrame(self.history, columns=None if self.history else ["epoch"])
        hist["best"] = hist["epoch"] == self.best_epoch
        return self.model, hist, self.best_epoch, self.best_f1


def _train(cfg, train_docs: DocumentSet, val_docs: DocumentSet, tp: TrainingParams, seed: int,
           on_epoch_end, epochs: int, desc: str = "training", fit_wide: bool = True,
           monitor_docs: DocumentSet | None = None):
    """One training run: ``(model with the best state restored, history, best_epoch, best_f1)``.

    Without validation documents every epoch counts as the best so far: the last state is kept.
    """
    run = _Run(cfg, train_docs, val_docs, tp, seed, fit_wide)
    if tp.pretrain_epochs:
        pre = run.pretrain(train_docs, tp.pretrain_epochs)
        if pre:
            log.debug("pretraining (%d epochs, no labels): last epoch %s", len(pre), pre[-1])
    bar = None
    if tp.progress:

        bar = tqdm(total=epochs, desc=desc, unit="epoch", leave=False)
    stale = 0
    try:
        avg_from = epochs - round(tp.weight_average * epochs) + 1 if len(val_docs) == 0 else None
        for epoch in range(1, epochs + 1):
            row = run.train_epoch(epoch)
            val_f1, stale = run.track(row, stale)
            if avg_from is not None and tp.weight_average > 0 and epoch >= avg_from:
                run.accumulate()
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{row.get('train_total', float('nan')):.3f}",
                                cls=f"{row.get('train_cls', float('nan')):.3f}",
                                val_f1="-" if val_f1 is None else f"{val_f1:.3f}")
            if on_epoch_end is not None:
                if val_f1 is None and monitor_docs is not None and len(monitor_docs):
                    # reported to the callback only (e.g. a pruner): never a selection
                    proba = predict(run.model, monitor_docs, tp.eval_batch_size,
                                    member=run.model.config.prediction.network_on_its_own)
                    on_epoch_end(epoch, macro_f1(monitor_docs.labels, proba))
                else:
                    on_epoch_end(epoch, val_f1)
            if val_f1 is not None and stale >= tp.patience and epoch >= tp.min_epochs:
                break
    finally:
        if bar is not None:
            bar.close()
    return run.finish()
