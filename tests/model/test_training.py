"""End-to-end learning on a small synthetic task: the full objective trains the model."""

from __future__ import annotations

import torch
from model_test_helpers import A_DIM, T_DIM, tiny_config

from hilbert_pipeline.model import HilbertLoss, HilbertModel


def synthetic_task(n_docs: int, seed: int, n: int = 8, n_cls: int = 3):
    """Class c adds prototype c to ~half of a document's real segments (audio and text get
    different prototypes); lengths vary and some segments lack text, so masking is exercised."""
    g = torch.Generator().manual_seed(seed)
    protos_g = torch.Generator().manual_seed(1234)  # same prototypes for train and test
    pa = 1.5 * torch.randn(n_cls, A_DIM, generator=protos_g)
    pt = 1.5 * torch.randn(n_cls, T_DIM, generator=protos_g)
    y = torch.arange(n_docs) % n_cls
    audio = torch.randn(n_docs, n, A_DIM, generator=g)
    text = torch.randn(n_docs, n, T_DIM, generator=g)
    lengths = torch.randint(3, n + 1, (n_docs,), generator=g)
    am = torch.arange(n)[None, :] < lengths[:, None]
    tm = am & (torch.rand(n_docs, n, generator=g) > 0.2)
    tm[:, 0] = True
    carry = torch.rand(n_docs, n, generator=g) < 0.5
    audio = audio + carry[..., None] * pa[y][:, None, :]
    text = text + carry[..., None] * pt[y][:, None, :]
    return (audio, text, am, tm), y


def test_optimisation_lowers_loss_and_learns_the_task():
    torch.manual_seed(0)
    cfg = tiny_config(top_k=2, dropout=0.1)
    model = HilbertModel(cfg)
    (batch, y), (test_batch, test_y) = synthetic_task(36, seed=1), synthetic_task(48, seed=2)
    loss_fn = HilbertLoss(cfg, class_counts=torch.bincount(y).tolist())
    opt = torch.optim.AdamW(list(model.parameters()) + list(loss_fn.parameters()), lr=3e-3)

    def evaluate(b, labels):
        model.eval()
        with torch.no_grad():
            out = model(*b)
            res = loss_fn(out, labels)
        model.train()
        return res, (out.logits.argmax(1) == labels).float().mean().item()

    res0, acc0 = evaluate(batch, y)
    history = []
    for _ in range(200):
        res = loss_fn(model(*batch), y)
        opt.zero_grad()
        res["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        history.append({k: v.item() for k, v in res.items()})
    res1, acc1 = evaluate(batch, y)
    _, test_acc = evaluate(test_batch, test_y)
    assert all(abs(v) < 1e6 for h in history for v in h.values())  # finite throughout
    assert res1["total"].item() < 0.5 * res0["total"].item()
    assert res1["cls"].item() < 0.3
    assert res1["dual"].item() < res0["dual"].item()
    assert acc1 >= 0.95 and acc0 < 0.6
    assert test_acc >= 0.7  # generalises to fresh documents (chance: 1/3)
