"""The HILBERT model (docs/model.md) and its unimodal baselines."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field

import torch
from torch import nn

from .config import HilbertConfig
from .layers import (
    AttentivePooling,
    CrossAttentionBlock,
    ModalityProjection,
    SegmentEvidenceHead,
    SegmentFusion,
    copy_standardisation,
)
from .moe import MLPClassifier, MoEClassifier


class ModelInputError(ValueError):
    """Tensors given to :class:`HilbertModel` have the wrong shape, dtype or values."""


@dataclass
class HilbertOutput:
    """Everything the losses and the trainer need from one forward pass.

    ``z_audio``/``z_text``/``z_joint``: (B, d) document embeddings (not normalised); for a
    unimodal model the unused modality is ``None`` and ``z_joint`` is the unimodal vector.
    ``logits`` (B, C); ``gate`` (B, K) mixture weights (ones (B, 1) for the MLP head);
    ``attention``: pooling weights per branch (``"audio"``, ``"text"``: (B, r, N); ``"joint"``:
    (B, r, 2N) over the concatenated [C_a ; C_t] axis); ``lb_loss``: scalar load-balancing term;
    ``head_logits`` (B, C): the deep head's own logits, before the wide path is combined with
    them (a ``"mixture"`` trains and early-stops on them); equal to ``logits`` without a wide
    path. ``fused_logits`` (B, C): the fused network's own logits (what its classification loss
    reads); ``members``: with ``unimodal_members``, each unimodal member's own output
    (``"audio"``, ``"text"``), whose ``head_logits`` its own classification loss reads; the
    network's ``head_logits`` are then the log of the members' weighted average probability
    (:attr:`HilbertModel.member_weights`), and equal ``fused_logits`` without members.
    ``feat_audio``/``feat_text``: masked mean of the raw segment features (B, d_a)/(B, d_t),
    zeros
    for a document without that modality; ``has_audio``/``has_text``: (B,) bool, whether the
    document has at least one real segment of the modality (losses use them to leave documents
    without a modality out of that modality's alignment terms); ``temperature``: the model's
    InfoNCE temperature (scalar, differentiable when learned).
    """

    z_audio: torch.Tensor | None
    z_text: torch.Tensor | None
    z_joint: torch.Tensor
    logits: torch.Tensor
    gate: torch.Tensor
    lb_loss: torch.Tensor
    feat_audio: torch.Tensor | None
    feat_text: torch.Tensor | None
    has_audio: torch.Tensor | None
    has_text: torch.Tensor | None
    temperature: torch.Tensor | None = None
    head_logits: torch.Tensor | None = None
    attention: dict[str, torch.Tensor] = field(default_factory=dict)
    fused_logits: torch.Tensor | None = None
    members: dict[str, HilbertOutput] = field(default_factory=dict)


#: the members of a network with ``unimodal_members``, in the order of ``member_weights``
MEMBERS = ("fused", "text", "audio")


def log_average_probability(logits: list[torch.Tensor], weights: torch.Tensor) -> torch.Tensor:
    """``log Σ_k w_k softmax(logits_k)``: the log of a weighted average of class probabilities
    (the members' average, and the linear member's mixture), computed in log space; a weight
    of 0 leaves its term out exactly."""
    logp = torch.stack([torch.log_softmax(x, dim=-1) for x in logits])
    return torch.logsumexp(logp + torch.log(weights.to(logp.dtype))[:, None, None], dim=0)


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    w = mask.to(x.dtype)
    return (x * w[..., None]).sum(dim=1) / w.sum(dim=1, keepdim=True).clamp_min(1.0)


class HilbertModel(nn.Module):
    """HILBERT: per-modality projection, cross-modal attention, attentive pooling, MoE head.

    ``modalities="both"`` (default)::

        Ã = Proj_a(A), T̃ = Proj_t(T)                       (B, N, d)
        C_a, C_t = XAttn_a(Ã | T̃), XAttn_t(T̃ | Ã)          (n_cross_layers blocks)
        z_a = Pool_a(Ã), z_t = Pool_t(T̃), z_j = Pool_j([C_a ; C_t])   (segment axis concat)
        logits, gate, lb = Head([z_a ; z_t ; z_j])

    Missing data: audio and text masks are independent, so a segment may lack text or audio.
    A document with no real segment of one modality gets a learned "missing" embedding for that
    modality's pooled vector (one per modality, so the head can tell "no transcript" apart from
    any real transcript), and its cross-attention toward that modality contributes a zero
    message; its joint vector pools only the modality that exists. A document with no real
    segment in *either* modality is a :class:`ModelInputError`.

    Unimodal baselines (``modalities="audio"`` / ``"text"``, e.g. ``HilbertModel.unimodal(cfg,
    "audio")``): the same projection + pooling blocks, no cross-attention, the head reads the
    single pooled vector, ``z_joint`` is that vector and the other modality's fields are None.
    The other modality's tensors may be passed as None. A document without any segment of the
    modality gets that modality's learned "missing" embedding, so the baseline still predicts
    (from what the head learned for such documents, in effect the class prior) and every method
    is scored on the identical test documents instead of silently dropping some.
    """

    def __init__(self, config: HilbertConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        c = config
        self.proj = nn.ModuleDict()
        self.pool = nn.ModuleDict()
        self.missing = nn.ParameterDict()
        for m, dim, used in (("audio", c.audio_dim, c.uses_audio),
                             ("text", c.text_dim, c.uses_text)):
            if not used:
                continue
            self.proj[m] = ModalityProjection(dim, c.d, c.dropout, c.position_encoding,
                                              c.position_scale, c.input_norm)
            self.pool[m] = AttentivePooling(c.d, c.pool_hops, c.pool_hidden_dim, c.pool_combine,
                                            c.pool_init)
            self.missing[m] = nn.Parameter(torch.randn(c.d) * 0.02)
        if c.modalities == "both":
            def blocks() -> nn.ModuleList:
                return nn.ModuleList(
                    CrossAttentionBlock(c.d, c.n_heads, c.dropout,
                                        attention_dropout=c.attention_dropout)
                    for _ in range(c.n_cross_layers))

            self.xattn_audio = blocks()
            self.xattn_text = blocks()
            self.pool["joint"] = AttentivePooling(c.d, c.pool_hops, c.pool_hidden_dim,
                                                  c.pool_combine, c.pool_init)
            if c.segment_fusion:
                self.fusion = SegmentFusion(c.d, c.dropout)
                if c.segment_head:
                    self.segment_head = SegmentEvidenceHead(c.d, c.n_classes)
        # The InfoNCE temperature is model state, as open_clip's logit_scale: it is saved in the
        # checkpoint, restored with the best epoch and kept out of weight decay by the trainer.
        log_t = torch.tensor(math.log(c.temperature_init))
        if c.learn_temperature:
            self.log_temperature = nn.Parameter(log_t)
        else:
            self.register_buffer("log_temperature", log_t)
        self._log_t_bounds = (math.log(c.temperature_min), math.log(c.temperature_max))
        if c.head == "moe":
            self.head = MoEClassifier(c.head_in_dim, c.n_classes, c.n_experts,
                                      c.expert_hidden_dim, c.top_k, c.dropout)
        else:
            self.head = MLPClassifier(c.head_in_dim, c.n_classes, c.expert_hidden_dim, c.dropout)
        if c.prediction.linear_member:
            width = (c.audio_dim if c.uses_audio else 0) + (c.text_dim if c.uses_text else 0)
            with torch.random.fork_rng(devices=[]):  # zeroed below: the random stream of
                self.wide = nn.Linear(width, c.n_classes)  # dropout stays that of no wide path
            nn.init.zeros_(self.wide.weight)
            nn.init.zeros_(self.wide.bias)
            self.register_buffer("pooled_mean", torch.zeros(width))
            self.register_buffer("pooled_std", torch.ones(width))
            if c.prediction.averages_members:
                # the linear member's share of the mixture: the config's number, or (``"auto"``)
                # 0.5 until the trainer sets it from inner cross-validation
                w = 0.5 if c.wide_weight == "auto" else float(c.wide_weight)
                self.register_buffer("wide_weight", torch.tensor(w))
            if c.wide_init == "logreg" and not c.prediction.network_on_its_own:  # deep logits
                last_layers = list(self.head.output_layers())  # start at 0: the model
                if hasattr(self, "segment_head"):  # starts as the logistic regression
                    last_layers.append(self.segment_head.score)
                for last in last_layers:
                    nn.init.zeros_(last.weight)
                    nn.init.zeros_(last.bias)
        if c.has_members:
            # own random stream: the fused network starts (and trains) as without its members
            with torch.random.fork_rng(devices=[]):
                self.members = nn.ModuleDict({m: HilbertModel(c.member_config(m))
                                              for m in MEMBERS[1:]})
            # (fused, text, audio); the trainer sets them from inner cross-validation
            self.register_buffer("member_weights", torch.tensor([1.0, 0.0, 0.0]))

    @property
    def temperature(self) -> torch.Tensor:
        """``exp(log tau)`` clamped to ``[temperature_min, temperature_max]``."""
        lo, hi = self._log_t_bounds
        return self.log_temperature.clamp(lo, hi).exp()

    @property
    def pooled_modalities(self) -> tuple[str, ...]:
        """The modalities whose pooled raw features feed the linear member (wide path), in order."""
        return self.config.pooled_modalities

    def set_segment_stats(self, modality: str, mean, std) -> None:
        """Standardisation of one modality's segment features (``input_norm="standardize"``):
        per-column mean and std over the training documents' real segments (also the member of
        that modality, with ``unimodal_members``)."""
        if modality not in self.proj:
            raise ValueError(f"this model has no {modality!r} branch (has {list(self.proj)})")
        self.proj[modality].set_stats(mean, std)
        if hasattr(self, "members") and modality in self.members:
            self.members[modality].set_segment_stats(modality, mean, std)

    def init_principal_projections(self, modality: str, segments) -> int:
        """Start ``config.principal_init`` of one modality's projection rows (and its
        member's) at the whitened principal components of ``segments``, the training
        documents' real segments of that modality ``(n, d_m)``, normalised as the projection
        normalises them (call after :meth:`set_segment_stats`). Uses no labels. Returns the
        number of projection rows set."""
        if modality not in self.proj:
            raise ValueError(f"this model has no {modality!r} branch (has {list(self.proj)})")
        segments = torch.as_tensor(segments)
        k = self.proj[modality].init_principal(segments, self.config.principal_init)
        if hasattr(self, "members") and modality in self.members:
            self.members[modality].init_principal_projections(modality, segments)
        return k

    def set_member_weights(self, weights) -> None:
        """The weights (fused, text, audio) of the members' average: non-negative, summing
        to 1."""
        if not hasattr(self, "members"):
            raise ValueError("set_member_weights needs a model with unimodal_members")
        w = torch.as_tensor(weights, dtype=self.member_weights.dtype).flatten()
        if w.numel() != len(MEMBERS) or not torch.isfinite(w).all() or (w < 0).any() \
                or abs(float(w.sum()) - 1.0) > 1e-6:
            raise ValueError(f"member weights must be {len(MEMBERS)} non-negative numbers "
                             f"summing to 1 (fused, text, audio), got {w.tolist()}")
        self.member_weights.copy_(w)

    def set_wide_weight(self, weight: float) -> None:
        """The linear member's weight ``w`` in the mixture ``(1 − w) p_net + w p_wide``
        (a number in [0, 1])."""
        if not self.config.prediction.averages_members:
            raise ValueError("set_wide_weight needs wide_path=True and wide_combine='mixture'")
        w = float(weight)
        if not math.isfinite(w) or not 0.0 <= w <= 1.0:
            raise ValueError(f"the linear member's weight must be in [0, 1], got {weight!r}")
        self.wide_weight.fill_(w)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:
        # a mixture saved before the weight was a buffer averaged its two parts equally
        key = prefix + "wide_weight"
        if hasattr(self, "wide_weight") and key not in state_dict \
                and prefix + "wide.weight" in state_dict:
            state_dict[key] = torch.tensor(0.5)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def set_pooled_stats(self, mean, std) -> None:
        """Standardisation of the linear member's input: per-column mean and std of the training
        documents' pooled features (columns of :attr:`pooled_modalities`, in order). A column
        with (near) zero spread is left unscaled."""
        if not self.config.prediction.linear_member:
            raise ValueError("set_pooled_stats needs wide_path=True")
        copy_standardisation(self.pooled_mean, self.pooled_std, mean, std, "pooled stats")

    def _wide_logits(self, feats: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]
                     ) -> torch.Tensor:
        """Linear logits of the standardised pooled features. One convention with the logistic
        regression whose weights the member copies (``DocumentSet.pooled_features``): a
        document without a modality has raw pooled features 0 there, standardised like any
        other value (``-mean/std``), so the member *is* that regression for such a document
        too."""
        cols, off = [], 0
        for m in self.pooled_modalities:
            x = _masked_mean(feats[m], masks[m])  # 0 where the document has no real segment
            w = x.shape[1]
            cols.append((x - self.pooled_mean[off:off + w]) / self.pooled_std[off:off + w])
            off += w
        return self.wide(torch.cat(cols, dim=-1))

    @classmethod
    def unimodal(cls, config: HilbertConfig, modality: str) -> HilbertModel:
        """The audio-only or text-only baseline built from the same config."""
        if modality not in ("audio", "text"):
            raise ValueError(f"modality must be 'audio' or 'text', got {modality!r}")
        return cls(config.replace(modalities=modality))

    # ------------------------------------------------------------------ input checks
    def _check_inputs(self, audio, text, audio_mask, text_mask) -> None:
        c = self.config
        given = {}
        for name, x, used in (("audio", audio, c.uses_audio), ("text", text, c.uses_text)):
            if not used:
                continue
            if not isinstance(x, torch.Tensor):
                raise ModelInputError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
            if x.dim() != 3:
                raise ModelInputError(f"{name} must have shape (B, N, d), got {tuple(x.shape)}")
            p_dtype = self.proj[name].linear.weight.dtype
            if x.dtype != p_dtype:
                raise ModelInputError(f"{name} must have the model's dtype {p_dtype}, got "
                                      f"{x.dtype}")
            given[name] = x
        for name, m, used in (("audio_mask", audio_mask, c.uses_audio),
                              ("text_mask", text_mask, c.uses_text)):
            if not used:
                continue
            if not isinstance(m, torch.Tensor) or m.dtype != torch.bool:
                what = m.dtype if isinstance(m, torch.Tensor) else type(m).__name__
                raise ModelInputError(f"{name} must be a bool tensor (True = real segment), "
                                      f"got {what}")
            if m.dim() != 2:
                raise ModelInputError(f"{name} must have shape (B, N), got {tuple(m.shape)}")
            given[name] = m
        ref = next(iter(given.values()))
        b, n = ref.shape[:2]
        shapes = ", ".join(f"{k}={tuple(v.shape)}" for k, v in given.items())
        for t in given.values():
            if tuple(t.shape[:2]) != (b, n):
                raise ModelInputError(f"batch/segment dimensions disagree: {shapes}")
        for name, dim in (("audio", c.audio_dim), ("text", c.text_dim)):
            if name in given and given[name].shape[2] != dim:
                raise ModelInputError(f"{name} feature width {given[name].shape[2]} != configured "
                                      f"{name}_dim={dim} ({shapes})")
        if b == 0 or n == 0:
            raise ModelInputError(f"empty batch: {shapes}")
        if c.max_segments is not None and n > c.max_segments:
            raise ModelInputError(f"{n} segments per document exceed max_segments="
                                  f"{c.max_segments}")
        for name in ("audio", "text"):
            if name in given and not torch.isfinite(given[name]).all():
                bad = (~torch.isfinite(given[name])).any(dim=2).nonzero()
                doc, seg = bad[0].tolist()
                raise ModelInputError(f"{name} features contain NaN/inf ({len(bad)} segment(s), "
                                      f"first at document {doc}, segment {seg})")
        if c.modalities == "both":
            any_real = given["audio_mask"].any(dim=1) | given["text_mask"].any(dim=1)
            if not any_real.all():
                docs = (~any_real).nonzero().flatten().tolist()
                raise ModelInputError(f"document(s) at batch index {docs} have no real segment "
                                      f"in either modality")

    def _drop_modalities(self, audio_mask: torch.Tensor, text_mask: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        """ModDrop: mask out all of one modality for a random subset of the documents."""
        b = audio_mask.shape[0]
        dev = audio_mask.device
        both = audio_mask.any(dim=1) & text_mask.any(dim=1)  # never drop a document's only one
        drop = (torch.rand(b, device=dev) < self.config.modality_dropout) & both
        audio_side = torch.rand(b, device=dev) < 0.5
        return (audio_mask & ~(drop & audio_side)[:, None],
                text_mask & ~(drop & ~audio_side)[:, None])

    def _drop_segments(self, audio_mask: torch.Tensor | None, text_mask: torch.Tensor | None
                       ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Segment dropout: mask out each real segment with probability ``segment_dropout``,
        in every modality the model reads at once (segment i's words and voice stay paired); a
        document the draw would leave empty keeps its segments."""
        c = self.config
        used = [m for m, u in ((audio_mask, c.uses_audio), (text_mask, c.uses_text)) if u]
        real = used[0] if len(used) == 1 else used[0] | used[1]
        keep = (torch.rand(real.shape, device=real.device) >= c.segment_dropout) & real
        keep = torch.where(keep.any(dim=1, keepdim=True), keep, real)
        return (audio_mask & keep if c.uses_audio else audio_mask,
                text_mask & keep if c.uses_text else text_mask)

    # ------------------------------------------------------------------ forward
    def forward(self, audio: torch.Tensor | None, text: torch.Tensor | None,
                audio_mask: torch.Tensor | None, text_mask: torch.Tensor | None) -> HilbertOutput:
        """Run the model on a padded batch: features (B, N, d_m), bool masks (B, N)."""
        self._check_inputs(audio, text, audio_mask, text_mask)
        c = self.config
        members: dict[str, HilbertOutput] = {}
        if hasattr(self, "members"):
            # the members see the inputs as they are (no ModDrop) and draw their dropout and
            # segment dropout from a stream of their own, so that the fused network trains as
            # without them
            dev = [audio.device] if audio.is_cuda else []
            fork = torch.random.fork_rng(devices=dev) if self.training else contextlib.nullcontext()
            with fork:
                members = {m: self.members[m](audio, text, audio_mask, text_mask)
                           for m in MEMBERS[1:]}
        if self.training and c.modalities == "both" and c.modality_dropout > 0:
            audio_mask, text_mask = self._drop_modalities(audio_mask, text_mask)
        if self.training and c.segment_dropout > 0:
            audio_mask, text_mask = self._drop_segments(audio_mask, text_mask)
        att: dict[str, torch.Tensor] = {}
        h: dict[str, torch.Tensor] = {}
        z: dict[str, torch.Tensor] = {}
        has: dict[str, torch.Tensor] = {}
        feats = {"audio": audio, "text": text}
        masks = {"audio": audio_mask, "text": text_mask}
        for m in self.proj:
            h[m] = self.proj[m](feats[m])
            zm, att[m], has[m] = self.pool[m](h[m], masks[m])
            if m in self.missing:
                zm = torch.where(has[m][:, None], zm, self.missing[m].to(zm.dtype)[None])
            z[m] = zm
        if c.modalities == "both":
            ca, ct = h["audio"], h["text"]
            for blk_a, blk_t in zip(self.xattn_audio, self.xattn_text, strict=True):
                ca, ct = blk_a(ca, ct, text_mask), blk_t(ct, ca, audio_mask)
            tokens, token_masks = [ca, ct], [audio_mask, text_mask]
            if c.segment_fusion:
                paired, paired_mask = self.fusion(h["audio"], h["text"], audio_mask, text_mask)
                tokens.append(paired)
                token_masks.append(paired_mask)
            zj, att["joint"], _ = self.pool["joint"](torch.cat(tokens, dim=1),
                                                     torch.cat(token_masks, dim=1))
            x = torch.cat([z["audio"], z["text"], zj], dim=-1)
        else:
            zj = z[c.modalities]
            x = zj
        head_logits, gate, lb = self.head(x)
        if c.modalities == "both" and c.segment_fusion and c.segment_head:
            seg_logits, att["segment_scores"] = self.segment_head(paired, paired_mask)
            head_logits = head_logits + seg_logits
        fused_logits = head_logits
        if members:  # log of the members' weighted average probability
            head_logits = log_average_probability(
                [fused_logits, *(members[m].head_logits for m in MEMBERS[1:])],
                self.member_weights)
        logits = head_logits
        form = c.prediction
        if form.linear_member:
            wide = self._wide_logits(feats, masks)
            if form.averages_members:  # log of the network's and the linear member's average
                w = self.wide_weight.to(head_logits.dtype)
                logits = log_average_probability([head_logits, wide], torch.stack([1 - w, w]))
            elif not form.trains_network:
                logits = wide
            else:
                logits = head_logits + wide
        return HilbertOutput(
            z_audio=z.get("audio"), z_text=z.get("text"), z_joint=zj, logits=logits, gate=gate,
            lb_loss=lb,
            feat_audio=_masked_mean(audio, audio_mask) if c.uses_audio else None,
            feat_text=_masked_mean(text, text_mask) if c.uses_text else None,
            has_audio=has.get("audio"), has_text=has.get("text"), temperature=self.temperature,
            head_logits=head_logits, attention=att, fused_logits=fused_logits, members=members,
        )
