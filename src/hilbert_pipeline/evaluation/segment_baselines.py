"""The two baselines a careful user would write for labels that live in single segments.

* ``bilinear_features``: pooled means of both modalities plus the mean over a document's segments
  of the outer product of low-rank (PCA) projections of its audio and text segment features;
  the projections are fitted on the training documents' segments only. A logistic regression on
  these features sees *which* voice went with *which* words, segment by segment, which pooled
  means cannot (``bilinear_logreg``).
* :func:`fit_segment_mil`: a multiple-instance model (``segment_mil``): each segment's
  standardised audio and text projected to ``width`` dimensions each, concatenated, ReLU, a
  linear layer to per-segment class scores, log-mean-exp over the document's segments; AdamW,
  a fixed number of epochs, one document per step, class-weighted cross-entropy.

Both are plain, fixed recipes (no early stopping, no tuning beyond the logistic regression's C),
as a user would write them in an afternoon; HILBERT has to hold its own against them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA
from torch import nn

from hilbert_pipeline.documents import DocumentSet, standardisation
from hilbert_pipeline.model import class_weights
from hilbert_pipeline.utils import seed_everything


@dataclass
class BilinearProjection:
    """Per-modality segment standardisation and PCA basis fitted on training segments."""

    mean: dict[str, np.ndarray]
    std: dict[str, np.ndarray]
    basis: dict[str, np.ndarray]  # (rank, d_m)

    @classmethod
    def fit(cls, docs: DocumentSet, rank: int, seed: int) -> BilinearProjection:

        mean, std, basis = {}, {}, {}
        for m in ("audio", "text"):
            x = docs.real_segments(m)  # stacked once: the statistics and the PCA read it
            mean[m], std[m] = standardisation(x)
            basis[m] = np.zeros((rank, x.shape[1]))
            k = int(min(rank, x.shape[0], x.shape[1]))
            if k > 0:
                pca = PCA(n_components=k, random_state=int(seed) % 2**32)
                basis[m][:k] = pca.fit((x - mean[m]) / std[m]).components_
        return cls(mean, std, basis)

    def features(self, docs: DocumentSet) -> np.ndarray:
        """``(D, d_a + d_t + rank²)``: pooled means, then the mean outer product over the segments
        that have both modalities (zeros for a document without such a segment)."""
        rank = self.basis["audio"].shape[0]
        outer = np.zeros((len(docs), rank * rank))
        for i in range(len(docs)):
            both = docs.audio_mask[i] & docs.text_mask[i]
            if not both.any():
                continue
            pa = ((docs.audio[i][both] - self.mean["audio"]) / self.std["audio"]) @ \
                self.basis["audio"].T
            pt = ((docs.text[i][both] - self.mean["text"]) / self.std["text"]) @ \
                self.basis["text"].T
            outer[i] = np.einsum("na,nt->at", pa, pt).ravel() / both.sum()
        return np.concatenate([docs.pooled_features(("audio", "text")), outer], axis=1)


def fit_segment_mil(train: DocumentSet, test: DocumentSet, seed: int, class_weight_power: float,
                    width: int = 16, epochs: int = 60, lr: float = 3e-3,
                    weight_decay: float = 1e-2) -> np.ndarray:
    """Train the multiple-instance baseline on ``train``; class probabilities on ``test``."""
    import torch


    seed_everything(seed)
    stats = {m: train.segment_stats(m) for m in ("audio", "text")}

    def tensors(docs: DocumentSet, i: int):
        out = []
        for m, feats, masks in (("audio", docs.audio, docs.audio_mask),
                                ("text", docs.text, docs.text_mask)):
            mu, sd = stats[m]
            x = (feats[i] - mu) / sd
            x = x * masks[i][:, None]  # a segment without the modality contributes zeros
            out.append(torch.as_tensor(x, dtype=torch.float32))
        real = torch.as_tensor(docs.audio_mask[i] | docs.text_mask[i])
        return out[0], out[1], real

    pa = nn.Linear(train.audio_dim, width)
    pt = nn.Linear(train.text_dim, width)
    score = nn.Linear(2 * width, train.n_classes)
    params = [*pa.parameters(), *pt.parameters(), *score.parameters()]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    w = class_weights(train.class_counts(), class_weight_power)

    def forward(a, t, real):
        s = score(torch.relu(torch.cat([pa(a), pt(t)], dim=-1)))[real]
        return torch.logsumexp(s, dim=0) - np.log(max(int(real.sum()), 1))

    data = [tensors(train, i) for i in range(len(train))]
    labels = torch.as_tensor(train.labels)
    gen = np.random.default_rng(seed)
    for _ in range(epochs):
        for i in gen.permutation(len(train)):
            # one document per step: its class weight scales the loss (a weighted mean over
            # one sample would cancel it)
            loss = w[labels[i]] * nn.functional.cross_entropy(forward(*data[i])[None],
                                                              labels[i:i + 1])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    with torch.no_grad():
        return np.stack([torch.softmax(forward(*tensors(test, i)), dim=0).numpy()
                         for i in range(len(test))]).astype(np.float64)
