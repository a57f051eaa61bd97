"""InfoNCE, the loss modules and HilbertLoss's term bookkeeping."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from model_test_helpers import make_batch, tiny_config

from hilbert_pipeline.model import (
    ClassificationLoss,
    HilbertLoss,
    HilbertModel,
    MIBalanceLoss,
    class_weights,
    info_nce,
    mi_estimates,
)


def _g(seed):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- InfoNCE
def test_info_nce_constant_logits_is_log_b():
    for b in (2, 5, 16):
        q = torch.ones(b, 4)
        k = torch.ones(b, 4) * 3
        assert info_nce(q, k, 0.07).item() == pytest.approx(math.log(b), abs=1e-5)


def test_info_nce_aligned_lower_than_shuffled_and_matches_manual():
    z = torch.randn(8, 16, generator=_g(0))
    key = z + 0.1 * torch.randn(8, 16, generator=_g(1))
    aligned = info_nce(z, key, 0.1)
    shuffled = info_nce(z, key[torch.tensor([1, 2, 3, 4, 5, 6, 7, 0])], 0.1)
    assert aligned.item() < 0.5 < math.log(8) < shuffled.item()
    logits = F.normalize(z, dim=-1) @ F.normalize(key, dim=-1).T / 0.1
    manual = -(logits.diag() - logits.logsumexp(dim=1)).mean()
    assert aligned.item() == pytest.approx(manual.item(), abs=1e-5)


def test_info_nce_is_directional():
    q = torch.randn(6, 5, generator=_g(2))
    k = torch.randn(6, 5, generator=_g(3))
    assert info_nce(q, k, 0.2).item() != pytest.approx(info_nce(k, q, 0.2).item(), abs=1e-4)


# ---------------------------------------------------------------- MI balance
def test_mi_balance_zero_when_equally_aligned():
    zj = torch.randn(8, 12, generator=_g(4))
    loss, i_a, i_t = MIBalanceLoss(1.0)(zj.clone(), zj.clone(), zj, torch.tensor(0.1))
    assert loss.item() == pytest.approx(0.0, abs=1e-10)
    assert i_a.item() == pytest.approx(i_t.item())


def test_mi_balance_gradient_step_reduces_gap():
    zj = torch.randn(16, 12, generator=_g(5))
    za = (zj + 0.05 * torch.randn(16, 12, generator=_g(6))).requires_grad_()  # well aligned
    zt = torch.randn(16, 12, generator=_g(7)).requires_grad_()  # unrelated
    mi = MIBalanceLoss(1.0)
    tau = torch.tensor(0.1)
    loss0, i_a0, i_t0 = mi(za, zt, zj, tau)
    assert i_a0.item() > i_t0.item() + 1.0
    opt = torch.optim.SGD([za, zt], lr=0.5)
    loss0.backward()
    opt.step()
    loss1, i_a1, i_t1 = mi(za, zt, zj, tau)
    assert loss1.item() < loss0.item()
    assert abs(i_a1.item() - i_t1.item()) < abs(i_a0.item() - i_t0.item())


# ---------------------------------------------------------------- classification
def test_class_weights_inverse_frequency_normalised():
    w = class_weights([90, 10], power=1.0)
    assert w[1] / w[0] == pytest.approx(9.0, rel=1e-5)
    assert (w * torch.tensor([90.0, 10.0])).sum().item() / 100 == pytest.approx(1.0, rel=1e-5)
    assert torch.allclose(class_weights([5, 50, 7], power=0.0), torch.ones(3))
    with pytest.raises(ValueError, match="non-negative"):
        class_weights([3, -1], 0.5)


def test_focal_gamma_zero_equals_weighted_ce_and_focal_downweights_easy():
    logits = torch.randn(10, 3, generator=_g(8))
    y = torch.randint(0, 3, (10,), generator=_g(9))
    ce = ClassificationLoss(1.0, 3, [5, 3, 2], power=0.5, kind="ce")(logits, y)
    f0 = ClassificationLoss(1.0, 3, [5, 3, 2], power=0.5, kind="focal", gamma=0.0)(logits, y)
    assert f0.item() == pytest.approx(ce.item(), rel=1e-5)
    f2 = ClassificationLoss(1.0, 3, [5, 3, 2], power=0.5, kind="focal", gamma=2.0)(logits, y)
    assert f2.item() < ce.item()


def test_classification_rejects_bad_labels():
    loss = ClassificationLoss(1.0, 3)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        loss(torch.zeros(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="shape"):
        loss(torch.zeros(2, 3), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="3 classes"):
        ClassificationLoss(1.0, 3, [4, 4])


# ---------------------------------------------------------------- HilbertLoss
def _run(cfg, b=6, seed=0, **batch_kw):
    torch.manual_seed(seed)
    model = HilbertModel(cfg)
    out = model(*make_batch(b=b, seed=seed, **batch_kw))
    labels = torch.arange(b) % cfg.n_classes
    return model, out, labels


def test_full_loss_has_every_term_and_total_is_weighted_sum():
    cfg = tiny_config(lambda_dual=0.5, lambda_cka=0.2, lambda_mi=0.3, lambda_lb=0.05)
    _, out, y = _run(cfg)
    res = HilbertLoss(cfg)(out, y)
    # losses only: no model state (temperature), no diagnostics (MI estimates)
    assert set(res) == {"cls", "dual", "cka", "mi", "lb", "total"}
    expect = res["cls"] + 0.5 * res["dual"] + 0.2 * res["cka"] + 0.3 * res["mi"] + 0.05 * res["lb"]
    assert res["total"].item() == pytest.approx(expect.item(), rel=1e-6)


@pytest.mark.parametrize("combine", ["residual", "mixture"])
def test_classification_term_reads_the_deep_head_alone_in_a_mixture(combine):
    """A mixture's deep member learns as if the wide path were absent: ``cls`` is the loss of
    the head's own logits, and no gradient reaches the wide path through it."""
    cfg = tiny_config(wide_path=True, wide_combine=combine, lambda_dual=0.0,
                      lambda_cka=0.0, lambda_mi=0.0, lambda_lb=0.0)
    model, out, y = _run(cfg)
    with torch.no_grad():
        model.wide.bias.copy_(torch.tensor([3.0, -1.0, 0.5]))
    out = model(*make_batch(b=6, seed=0))
    res = HilbertLoss(cfg)(out, y)
    cls = ClassificationLoss(1.0, cfg.n_classes)
    read = out.head_logits if combine == "mixture" else out.logits
    assert res["cls"].item() == pytest.approx(cls(read, y).item(), rel=1e-6)
    assert res["cls"].item() != pytest.approx(cls(out.logits if combine == "mixture"
                                                  else out.head_logits, y).item(), rel=1e-3)
    res["total"].backward()
    assert (model.wide.bias.grad is None) == (combine == "mixture")


def test_mi_estimates_are_diagnostics_apart_from_the_losses():
    cfg = tiny_config(lambda_mi=0.3)
    _, out, y = _run(cfg)
    est = mi_estimates(out)
    assert set(est) == {"mi_audio", "mi_text"}
    assert not est["mi_audio"].requires_grad and not est["mi_text"].requires_grad
    # the MI-balance term is ((I_a - I_t) / log B)^2 of the same estimates
    gap = (est["mi_audio"].item() - est["mi_text"].item()) / math.log(6)
    assert HilbertLoss(cfg)(out, y)["mi"].item() == pytest.approx(gap ** 2, rel=1e-4, abs=1e-7)
    # also without the MI term (ablations stay comparable) ...
    assert set(mi_estimates(HilbertModel(tiny_config(lambda_mi=0.0))(*make_batch(b=6)))) == {
        "mi_audio", "mi_text"}
    # ... but not for a unimodal model
    uni = HilbertModel.unimodal(tiny_config(), "text")
    a, t, am, tm = make_batch(b=6)
    assert mi_estimates(uni(None, t, None, tm)) == {}


@pytest.mark.parametrize("name,field", [("dual", "lambda_dual"), ("cka", "lambda_cka"),
                                        ("mi", "lambda_mi"), ("lb", "lambda_lb")])
def test_zero_weight_removes_term_without_computing_it(name, field):
    cfg = tiny_config(**{field: 0.0})
    _, out, y = _run(cfg)
    loss = HilbertLoss(cfg)
    calls = []
    for mod in (loss.dual, loss.cka, loss.mi, loss.direct):
        mod.register_forward_hook(lambda m, i, o, mod=mod: calls.append(mod))
    res = loss(out, y)
    assert name not in res
    if name != "lb":
        assert getattr(loss, name) not in calls
    others = {"dual", "cka", "mi", "lb"} - {name}
    assert others <= set(res)
    full = HilbertLoss(tiny_config())(out, y)
    # total drops exactly the removed term (same outputs, same other weights)
    lam = getattr(tiny_config(), field)
    assert (full["total"] - res["total"]).item() == pytest.approx(lam * full[name].item(),
                                                                  rel=1e-4, abs=1e-6)


def test_direct_alignment_has_no_joint_centric_term():
    cfg = tiny_config(alignment="direct")
    _, out, y = _run(cfg)
    loss = HilbertLoss(cfg)
    res = loss(out, y)
    assert "direct" in res and not {"dual", "cka", "mi"} & set(res)
    # The alignment part of the objective does not depend on z_joint at all.
    out.z_joint.retain_grad()
    (res["total"] - res["cls"] - cfg.lambda_lb * res["lb"]).backward(retain_graph=True)
    assert out.z_joint.grad is None or out.z_joint.grad.abs().max().item() == 0.0
    expect = 0.5 * (info_nce(out.z_audio, out.z_text, out.temperature)
                    + info_nce(out.z_text, out.z_audio, out.temperature))
    assert res["direct"].item() == pytest.approx(expect.item(), rel=1e-6)


def test_small_batch_skips_batch_terms():
    cfg = tiny_config()
    _, out, y = _run(cfg, b=1)
    res = HilbertLoss(cfg)(out, y)
    assert set(res) == {"cls", "lb", "total"}
    cfg_u = tiny_config(cka_unbiased=True)
    _, out, y = _run(cfg_u, b=3)
    res = HilbertLoss(cfg_u)(out, y)
    assert "cka" not in res and "dual" in res


def test_documents_missing_a_modality_are_left_out_of_its_terms():
    cfg = tiny_config()
    torch.manual_seed(0)
    model = HilbertModel(cfg).eval()
    a, t, am, tm = make_batch(b=5, seed=3)
    tm[4] = False  # document 4 has no transcript
    out = model(a, t, am, tm)
    loss = HilbertLoss(cfg)
    res = loss(out, torch.arange(5) % 3)
    keep = torch.arange(4)
    tau = out.temperature
    la = 0.5 * (info_nce(out.z_audio, out.z_joint, tau) + info_nce(out.z_joint, out.z_audio, tau))
    lt = 0.5 * (info_nce(out.z_text[keep], out.z_joint[keep], tau)
                + info_nce(out.z_joint[keep], out.z_text[keep], tau))
    assert res["dual"].item() == pytest.approx((la + lt).item(), rel=1e-5)


def test_temperature_is_model_state_learnable_clamped_and_can_be_frozen():
    cfg = tiny_config()
    model = HilbertModel(cfg)
    assert list(HilbertLoss(cfg).parameters()) == []  # the loss holds no state
    assert "log_temperature" in model.state_dict()  # saved in checkpoints with the weights
    assert model.temperature.item() == pytest.approx(0.07, rel=1e-5)
    with torch.no_grad():
        model.log_temperature.fill_(math.log(1e-5))
    assert model.temperature.item() == pytest.approx(cfg.temperature_min, rel=1e-5)
    model, out, y = _run(cfg)
    assert out.temperature.item() == pytest.approx(model.temperature.item())
    HilbertLoss(cfg)(out, y)["total"].backward()
    assert model.log_temperature.grad is not None and model.log_temperature.grad.abs() > 0
    frozen = HilbertModel(tiny_config(learn_temperature=False))
    assert "log_temperature" not in dict(frozen.named_parameters())
    assert "log_temperature" in frozen.state_dict()


def test_label_aware_positives_equal_instance_form_with_distinct_labels():
    torch.manual_seed(0)
    q, k = torch.randn(5, 4), torch.randn(5, 4)
    assert info_nce(q, k, 0.1, torch.arange(5)).item() == pytest.approx(
        info_nce(q, k, 0.1).item(), rel=1e-6)
    # same-class keys are positives: row 0's loss is the mean of -log p over keys 0 and 1
    y = torch.tensor([0, 0, 1, 2, 3])
    logp = torch.log_softmax(F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).T / 0.1, dim=-1)
    per_row = [-(logp[0, 0] + logp[0, 1]) / 2, -(logp[1, 0] + logp[1, 1]) / 2,
               -logp[2, 2], -logp[3, 3], -logp[4, 4]]
    assert info_nce(q, k, 0.1, y).item() == pytest.approx(torch.stack(per_row).mean().item(),
                                                         rel=1e-6)


def test_label_aware_dual_does_not_reward_separating_same_class_documents():
    from hilbert_pipeline.model import DualContrastiveLoss

    torch.manual_seed(0)
    b = 6
    z = torch.randn(b, 8)  # modality vectors identical to the joint ones: perfect instance match
    y = torch.zeros(b, dtype=torch.long)  # one class: every document is a positive
    loss = DualContrastiveLoss(1.0)
    inst = loss(z, z, z, z, torch.tensor(0.05))
    lab = loss(z, z, z, z, torch.tensor(0.05), y, y)
    # the instance form is ~0 (documents told apart); the label-aware form cannot go below
    # 2 log B (its minimum: every same-class document equally similar), so telling same-class
    # documents apart earns nothing
    assert inst.item() < 0.5
    assert lab.item() >= 2 * math.log(b) - 1e-4


def test_joint_stop_gradient_keeps_alignment_out_of_the_joint_branch():
    for stop in (False, True):
        cfg = tiny_config(joint_stop_gradient=stop, lambda_lb=0.0)
        model, out, y = _run(cfg)
        res = HilbertLoss(cfg)(out, y)
        aux = res["total"] - res["cls"]
        model.zero_grad()
        aux.backward()
        g = model.pool["joint"].out.weight.grad
        moved = g is not None and g.abs().max().item() > 0
        assert moved is not stop


def test_aux_scale_scales_only_the_alignment_terms():
    cfg = tiny_config()
    _, out, y = _run(cfg)
    loss = HilbertLoss(cfg)
    full, none = loss(out, y), loss(out, y, aux_scale=0.0)
    assert none["total"].item() == pytest.approx(
        (full["cls"] + cfg.lambda_lb * full["lb"]).item(), rel=1e-6)


def test_unimodal_loss_is_classification_only():
    cfg = tiny_config(modalities="text", head="mlp")
    _, out, y = _run(cfg)
    res = HilbertLoss(cfg)(out, y)
    assert set(res) == {"cls", "total"}
    assert res["total"].item() == pytest.approx(res["cls"].item())


def test_label_smoothing_spreads_the_target_as_documented():
    import torch.nn.functional as F

    from hilbert_pipeline.model import ClassificationLoss

    g = torch.Generator().manual_seed(3)
    logits = torch.randn(5, 3, generator=g)
    labels = torch.tensor([0, 2, 1, 1, 0])
    loss = ClassificationLoss(1.0, 3, label_smoothing=0.2)(logits, labels)
    target = torch.full((5, 3), 0.2 / 3)
    target[torch.arange(5), labels] += 0.8
    expect = -(target * F.log_softmax(logits, -1)).sum(-1).mean()
    torch.testing.assert_close(loss, expect)
    plain = ClassificationLoss(1.0, 3)(logits, labels)
    torch.testing.assert_close(plain, F.cross_entropy(logits, labels))
    with pytest.raises(ValueError, match="label_smoothing"):
        ClassificationLoss(1.0, 3, label_smoothing=1.0)


def test_members_add_their_own_terms_and_the_fused_terms_are_unchanged():
    """With members the loss has the fused network's terms, exactly as without members, plus
    each member's ``<m>_cls``/``<m>_lb``; ``total`` adds them all with weight 1; without labels
    the members are not trained."""
    cfg = tiny_config(unimodal_members=True)
    torch.manual_seed(0)
    model = HilbertModel(cfg).eval()
    audio, text, am, tm = make_batch()
    labels = torch.tensor([0, 1, 2, 0])
    out = model(audio, text, am, tm)
    terms = HilbertLoss(cfg)(out, labels)
    assert {"text_cls", "text_lb", "audio_cls", "audio_lb"} <= set(terms)
    plain = HilbertLoss(cfg.replace(unimodal_members=False))(out, labels)
    for k, v in plain.items():
        if k != "total":
            torch.testing.assert_close(terms[k], v)
    member = sum(terms[f"{m}_cls"] + cfg.lambda_lb * terms[f"{m}_lb"] for m in ("text", "audio"))
    torch.testing.assert_close(terms["total"], plain["total"] + member)
    assert not any(k.startswith(("text_", "audio_")) for k in HilbertLoss(cfg)(out, None))


def test_distillation_is_the_class_weighted_cross_entropy_against_the_teacher():
    from hilbert_pipeline.model import DistillationLoss

    g = torch.Generator().manual_seed(4)
    logits = torch.randn(6, 3, generator=g)
    teacher = torch.softmax(torch.randn(6, 3, generator=g), -1)
    labels = torch.tensor([0, 0, 0, 1, 1, 2])
    counts = torch.tensor([3.0, 2.0, 1.0])
    loss = DistillationLoss(0.5, counts, power=0.5)(logits, teacher, labels)
    w = class_weights(counts, 0.5)[labels]
    per_doc = -(teacher * F.log_softmax(logits, -1)).sum(-1)
    torch.testing.assert_close(loss, (w * per_doc).sum() / w.sum())
    # a one-hot teacher is the (unsmoothed) classification term
    onehot = F.one_hot(labels, 3).float()
    torch.testing.assert_close(DistillationLoss(0.5, counts)(logits, onehot, labels),
                               ClassificationLoss(1.0, 3, counts)(logits, labels))
    # smoothing: a one-hot teacher is the smoothed classification term (unweighted: PyTorch
    # weighs the smoothed part of a class-weighted cross-entropy per class, not per document)
    torch.testing.assert_close(
        DistillationLoss(0.5, label_smoothing=0.2)(logits, onehot, labels),
        ClassificationLoss(1.0, 3, label_smoothing=0.2)(logits, labels))
    with pytest.raises(ValueError, match="shape"):
        DistillationLoss(0.5)(logits, teacher[:, :2], labels)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        DistillationLoss(1.0)


def test_hilbert_loss_mixes_the_labels_and_the_teacher_only_when_given_one():
    cfg = tiny_config(distill_weight=0.75, label_smoothing=0.0)
    _, out, y = _run(cfg)
    loss = HilbertLoss(cfg)
    plain = loss(out, y)
    assert "distill" not in plain  # validation and prediction: no teacher, the labels alone
    teacher = torch.softmax(torch.randn(len(y), cfg.n_classes, generator=_g(9)), -1)
    res = loss(out, y, teacher={"both": teacher})
    assert res["cls"].item() == pytest.approx(plain["cls"].item())
    expect = plain["total"] - plain["cls"] + 0.25 * res["cls"] + 0.75 * res["distill"]
    assert res["total"].item() == pytest.approx(expect.item(), rel=1e-6)
    # a teacher for other modalities than the network's is not this network's
    assert "distill" not in loss(out, y, teacher={"text": teacher})
    # a teacher that repeats the labels changes nothing, with label smoothing too
    for eps in (0.0, 0.2):
        smoothed = HilbertLoss(cfg.replace(label_smoothing=eps))
        same = smoothed(out, y, teacher={"both": F.one_hot(y, cfg.n_classes).float()})
        assert same["total"].item() == pytest.approx(smoothed(out, y)["total"].item(), rel=1e-6)
    # off (the weight 0): the teacher is ignored
    off = HilbertLoss(tiny_config(distill_weight=0.0, label_smoothing=0.0))(
        out, y, teacher={"both": teacher})
    assert "distill" not in off and off["total"].item() == pytest.approx(plain["total"].item())
    with pytest.raises(ValueError, match="distill_weight"):
        tiny_config(distill_weight=1.0)


def test_each_member_is_distilled_from_the_teacher_of_its_own_modality():
    cfg = tiny_config(distill_weight=0.5, label_smoothing=0.0, unimodal_members=True)
    _, out, y = _run(cfg)
    loss = HilbertLoss(cfg)
    g = _g(11)
    teachers = {k: torch.softmax(torch.randn(len(y), cfg.n_classes, generator=g), -1)
                for k in ("both", "text", "audio")}
    res = loss(out, y, teacher=teachers)
    assert {"distill", "text_distill", "audio_distill"} <= set(res)
    for m in ("text", "audio"):
        alone = HilbertLoss(cfg.member_config(m))(out.members[m], y, teacher=teachers)
        assert res[f"{m}_distill"].item() == pytest.approx(alone["distill"].item())
        # the member's term reads its own modality's teacher, not the fused network's
        other = HilbertLoss(cfg.member_config(m))(out.members[m], y,
                                                 teacher={m: teachers["both"]})
        assert other["distill"].item() != pytest.approx(alone["distill"].item())
