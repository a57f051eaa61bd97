"""HilbertModel: shapes, masking invariances, missing modalities, input errors, determinism."""

from __future__ import annotations

import pytest
import torch
from model_test_helpers import A_DIM, N_CLS, T_DIM, make_batch, tiny_config

from hilbert_pipeline.model import HilbertModel, ModelInputError


def _model(seed=0, **kw):
    torch.manual_seed(seed)
    return HilbertModel(tiny_config(**kw)).eval()


FIELDS = ("z_audio", "z_text", "z_joint", "logits", "gate", "feat_audio", "feat_text")


def _row(out, i):
    return {f: getattr(out, f)[i] for f in FIELDS}


def _assert_rows_close(r1, r2, atol=1e-5):
    for f in FIELDS:
        assert torch.allclose(r1[f], r2[f], atol=atol), f


def test_output_shapes_and_attention_are_masked_distributions():
    model = _model()
    a, t, am, tm = make_batch(b=4, n=7)
    tm[0, 2] = False  # a segment without text
    am[1, 0] = False  # a segment without audio
    out = model(a, t, am, tm)
    d = model.config.d
    for f in ("z_audio", "z_text", "z_joint"):
        assert getattr(out, f).shape == (4, d)
    assert out.logits.shape == (4, N_CLS) and out.gate.shape == (4, 3)
    assert out.feat_audio.shape == (4, A_DIM) and out.feat_text.shape == (4, T_DIM)
    assert torch.allclose(out.gate.sum(1), torch.ones(4), atol=1e-6)
    r = model.config.pool_hops
    assert out.attention["audio"].shape == (4, r, 7)
    assert out.attention["joint"].shape == (4, r, 21)  # audio, text, paired tokens
    assert out.attention["segment_scores"].shape == (4, 7, N_CLS)
    joint_mask = torch.cat([am, tm, am | tm], 1)
    for name, mask in (("audio", am), ("text", tm), ("joint", joint_mask)):
        w = out.attention[name]
        assert torch.allclose(w.sum(-1), torch.ones(4, r), atol=1e-5)
        assert (w.masked_select(~mask[:, None, :].expand_as(w)) == 0).all()
    # masked mean of raw features ignores padding
    assert torch.allclose(out.feat_text[0], t[0][tm[0]].mean(0), atol=1e-6)


def test_padding_appended_does_not_change_a_document():
    model = _model()
    a, t, am, tm = make_batch(b=3, n=6)
    ref = model(a, t, am, tm)
    pad = 5
    g = torch.Generator().manual_seed(9)
    a2 = torch.cat([a, 100 * torch.randn(3, pad, A_DIM, generator=g)], 1)
    t2 = torch.cat([t, 100 * torch.randn(3, pad, T_DIM, generator=g)], 1)
    no = torch.zeros(3, pad, dtype=torch.bool)
    out = model(a2, t2, torch.cat([am, no], 1), torch.cat([tm, no], 1))
    for i in range(3):
        _assert_rows_close(_row(ref, i), _row(out, i))


def test_padding_values_inside_the_sequence_are_ignored():
    model = _model()
    a, t, am, tm = make_batch(b=2, n=6, lengths=[4, 6])
    tm[1, 2] = False
    ref = model(a, t, am, tm)
    a2, t2 = a.clone(), t.clone()
    a2[0, 4:] = 1e3
    t2[1, 2] = -1e3
    t2[0, 4:] = 7.0
    out = model(a2, t2, am, tm)
    for i in range(2):
        _assert_rows_close(_row(ref, i), _row(out, i))


def test_other_documents_in_batch_do_not_matter():
    model = _model()
    a, t, am, tm = make_batch(b=4, n=6, seed=1)
    ref = model(a, t, am, tm)
    b2 = make_batch(b=4, n=6, seed=2, lengths=[2, 3, 6, 1])
    a2, t2, am2, tm2 = (x.clone() for x in b2)
    a2[2], t2[2], am2[2], tm2[2] = a[2], t[2], am[2], tm[2]
    out = model(a2, t2, am2, tm2)
    _assert_rows_close(_row(ref, 2), _row(out, 2))
    solo = model(a[2:3], t[2:3], am[2:3], tm[2:3])
    _assert_rows_close(_row(ref, 2), _row(solo, 0))


def test_output_depends_on_real_segments_and_on_both_modalities():
    """Guards against a model that ignores its inputs (which would pass invariance tests)."""
    model = _model()
    a, t, am, tm = make_batch(b=2, n=6)
    ref = model(a, t, am, tm)
    t2 = t.clone()
    # (not a constant shift: the input LayerNorm removes per-segment offset and scale by design)
    t2[0, 0] += torch.linspace(-1.0, 1.0, T_DIM)
    out = model(a, t2, am, tm)
    assert not torch.allclose(ref.z_joint[0], out.z_joint[0], atol=1e-4)
    assert not torch.allclose(ref.z_text[0], out.z_text[0], atol=1e-4)
    assert torch.allclose(ref.z_audio[0], out.z_audio[0], atol=1e-6)  # z_a sees only audio
    assert torch.allclose(ref.z_joint[1], out.z_joint[1], atol=1e-6)


def test_position_encoding_makes_order_matter_only_when_enabled():
    a, t, am, tm = make_batch(b=1, n=5, lengths=[5])
    perm = torch.tensor([4, 2, 0, 1, 3])
    for pe in (True, False):
        model = _model(position_encoding=pe)
        z1 = model(a, t, am, tm).z_joint
        z2 = model(a[:, perm], t[:, perm], am, tm).z_joint
        assert torch.allclose(z1, z2, atol=1e-5) is (not pe)


def test_document_missing_one_modality_uses_missing_embedding():
    model = _model()
    a, t, am, tm = make_batch(b=3, n=6)
    tm[1] = False  # no transcript at all
    am[2] = False  # no audio at all
    out = model(a, t, am, tm)
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.z_joint).all()
    assert torch.equal(out.has_text, torch.tensor([True, False, True]))
    assert torch.equal(out.has_audio, torch.tensor([True, True, False]))
    assert torch.allclose(out.z_text[1], model.missing["text"])
    assert torch.allclose(out.z_audio[2], model.missing["audio"])
    assert (out.attention["text"][1] == 0).all() and (out.feat_text[1] == 0).all()
    # the document's joint vector does not depend on its (absent) text values
    t2 = t.clone()
    t2[1] = 50.0
    out2 = model(a, t2, am, tm)
    assert torch.allclose(out.z_joint[1], out2.z_joint[1], atol=1e-6)
    # and gradients stay finite
    model.train()
    out = model(a, t, am, tm)
    out.logits.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_document_with_no_segment_in_either_modality_is_an_error():
    model = _model()
    a, t, am, tm = make_batch(b=3, n=5)
    am[1] = False
    tm[1] = False
    with pytest.raises(ModelInputError, match=r"batch index \[1\].*either modality"):
        model(a, t, am, tm)


@pytest.mark.parametrize("mutate,match", [
    (lambda b: (b[0][:, :4], b[1], b[2], b[3]), r"disagree: audio=\(2, 4, 6\), text=\(2, 5, 10\)"),
    (lambda b: (b[0], b[1][..., :7], b[2], b[3]), "text feature width 7 != configured text_dim=10"),
    (lambda b: (b[0], b[1], b[2].float(), b[3]), "audio_mask must be a bool tensor"),
    (lambda b: (b[0][0], b[1], b[2], b[3]), r"audio must have shape \(B, N, d\)"),
    (lambda b: (b[0], b[1], b[2], b[3][:1]), "disagree"),
    (lambda b: (b[0].double(), b[1], b[2], b[3]), "audio must have the model's dtype"),
])
def test_bad_shapes_are_value_errors(mutate, match):
    model = _model()
    with pytest.raises(ValueError, match=match):
        model(*mutate(make_batch(b=2, n=5)))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_features_are_value_errors(value):
    model = _model()
    a, t, am, tm = make_batch(b=2, n=5)
    t[1, 3, 2] = value
    with pytest.raises(ValueError, match=r"text features contain NaN/inf.*document 1, segment 3"):
        model(a, t, am, tm)


def test_max_segments_enforced():
    model = _model(max_segments=4)
    with pytest.raises(ValueError, match="exceed max_segments=4"):
        model(*make_batch(b=2, n=5))


def test_same_seed_same_model_and_outputs():
    batch = make_batch(b=3, n=5)
    o1 = _model(seed=7).train()
    o2 = _model(seed=7).train()
    torch.manual_seed(11)
    r1 = o1(*batch)
    torch.manual_seed(11)
    r2 = o2(*batch)
    assert torch.equal(r1.logits, r2.logits) and torch.equal(r1.z_joint, r2.z_joint)
    o3 = _model(seed=8).train()
    torch.manual_seed(11)
    assert not torch.allclose(o3(*batch).logits, r1.logits)


def test_eval_mode_is_deterministic_and_dropout_active_in_train():
    model = _model(dropout=0.3)
    batch = make_batch(b=2, n=5)
    assert torch.equal(model(*batch).logits, model(*batch).logits)
    model.train()
    assert not torch.equal(model(*batch).logits, model(*batch).logits)


@pytest.mark.parametrize("modality", ["audio", "text"])
def test_unimodal_models(modality):
    torch.manual_seed(0)
    model = HilbertModel.unimodal(tiny_config(), modality).eval()
    a, t, am, tm = make_batch(b=3, n=5)
    args = (a, None, am, None) if modality == "audio" else (None, t, None, tm)
    out = model(*args)
    z = out.z_audio if modality == "audio" else out.z_text
    other = out.z_text if modality == "audio" else out.z_audio
    assert other is None and torch.equal(out.z_joint, z)
    assert set(out.attention) == {modality}
    assert out.logits.shape == (3, N_CLS)
    assert not any("xattn" in n or "text" in n and modality == "audio"
                   for n, _ in model.named_parameters())
    # same projection + pooling blocks as the bimodal model
    full = HilbertModel(tiny_config())
    for name, p in model.named_parameters():
        if name.startswith(("proj.", "pool.")):
            assert full.get_parameter(name).shape == p.shape
    # no segment of the only modality -> the learned missing embedding, whatever the features
    mask = (am if modality == "audio" else tm).clone()
    mask[0] = False
    feats = (a if modality == "audio" else t).clone()
    out1 = model(*((feats, None, mask, None) if modality == "audio" else (None, feats, None, mask)))
    feats[0] = torch.randn_like(feats[0]) * 5
    out2 = model(*((feats, None, mask, None) if modality == "audio" else (None, feats, None, mask)))
    missing = model.missing[modality]
    assert torch.equal(out1.z_joint[0], missing) and torch.equal(out2.logits[0], out1.logits[0])
    assert torch.equal(out1.logits[1:], out.logits[1:])


def test_mlp_head_and_mean_pool_and_no_cross_layers_variants():
    for kw in ({"head": "mlp"}, {"pool_combine": "mean"}, {"n_cross_layers": 0},
               {"attention_dropout": 0.2},
               {"n_cross_layers": 2, "top_k": 1}):
        model = _model(**kw)
        out = model(*make_batch(b=2, n=4))
        assert torch.isfinite(out.logits).all(), kw
    out = _model(head="mlp")(*make_batch(b=2, n=4))
    assert torch.equal(out.gate, torch.ones(2, 1))


def test_modality_dropout_masks_one_whole_modality_in_training_only():
    cfg = tiny_config(modality_dropout=1.0)
    torch.manual_seed(0)
    model = HilbertModel(cfg)
    a, t, am, tm = make_batch(b=8, seed=1)
    model.train()
    out = model(a, t, am, tm)
    # p = 1: every document that has both modalities keeps exactly one of them
    assert (out.has_audio ^ out.has_text).all()
    model.eval()
    out = model(a, t, am, tm)
    assert out.has_audio.all() and out.has_text.all()
    # a document with only one modality is never left with none
    tm2 = tm.clone()
    tm2[0] = False
    model.train()
    out = model(a, t, am, tm2)
    assert out.has_audio[0] and not out.has_text[0]


def _pooled_positions(out, branch: str) -> torch.Tensor:
    """The segment positions a branch's pooling read (attention > 0 in some hop): (B, N)."""
    return (out.attention[branch] > 0).any(dim=1)


def test_segment_dropout_leaves_out_paired_segments_in_training_only():
    cfg = tiny_config(segment_dropout=0.5)
    torch.manual_seed(0)
    model = HilbertModel(cfg)
    a, t, am, tm = make_batch(b=8, n=9, seed=1)
    model.train()
    out = model(a, t, am, tm)
    read_a, read_t = _pooled_positions(out, "audio"), _pooled_positions(out, "text")
    assert torch.equal(read_a, read_t)               # words and voice of a segment go together
    assert not (read_a & ~am).any()                  # padding stays out
    assert read_a.any(dim=1).all()                   # every document keeps a segment
    assert read_a.sum() < am.sum()                   # some real segments were left out
    # a fresh draw at every step
    assert not torch.equal(_pooled_positions(model(a, t, am, tm), "audio"), read_a)
    model.eval()
    out = model(a, t, am, tm)
    assert torch.equal(_pooled_positions(out, "audio"), am)
    assert torch.equal(_pooled_positions(out, "text"), tm)


def test_segment_dropout_never_leaves_a_document_empty():
    cfg = tiny_config(segment_dropout=0.999)
    torch.manual_seed(0)
    model = HilbertModel(cfg).train()
    a, t, am, tm = make_batch(b=6, n=5, seed=2)
    out = model(a, t, am, tm)  # nearly every draw drops all: those documents keep all
    assert _pooled_positions(out, "audio").any(dim=1).all()
    assert out.has_audio.all() and out.has_text.all()


def test_segment_dropout_on_a_unimodal_model_masks_its_modality():
    cfg = tiny_config(segment_dropout=0.5, modalities="text")
    torch.manual_seed(0)
    model = HilbertModel(cfg).train()
    a, t, am, tm = make_batch(b=8, n=9, seed=3)
    read = _pooled_positions(model(None, t, None, tm), "text")
    assert read.any(dim=1).all() and read.sum() < tm.sum() and not (read & ~tm).any()


def test_uniform_pool_init_starts_as_the_mean_over_real_segments():
    from hilbert_pipeline.model import AttentivePooling

    pool = AttentivePooling(6, hops=3, hidden=4, combine="mean", init="uniform")
    h = torch.randn(2, 5, 6)
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    z, att, _ = pool(h, mask)
    torch.testing.assert_close(z[0], h[0].mean(0))
    torch.testing.assert_close(z[1], h[1, :2].mean(0))
    assert torch.allclose(att[1, :, :2], torch.full((3, 2), 0.5))


def test_position_scale_scales_the_encoding():
    from hilbert_pipeline.model import ModalityProjection, sinusoidal_positions

    torch.manual_seed(0)
    x = torch.randn(1, 4, 5)
    plain = ModalityProjection(5, 8, 0.0, False).eval()
    scaled = ModalityProjection(5, 8, 0.0, True, position_scale=0.25).eval()
    scaled.load_state_dict(plain.state_dict())
    torch.testing.assert_close(scaled(x) - plain(x), 0.25 * sinusoidal_positions(4, 8)[None])


def _with_wide_path(combine, seed=0):
    """A model with a random (non-zero) wide path combined as ``combine``."""
    model = _model(seed, wide_path=True, wide_combine=combine)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        model.wide.weight.copy_(torch.randn(model.wide.weight.shape, generator=g))
        model.wide.bias.copy_(torch.randn(model.wide.bias.shape, generator=g))
    return model


@pytest.mark.parametrize("combine", ["residual", "mixture", "wide"])
def test_wide_path_combines_with_the_deep_head_as_configured(combine):
    """residual: logits add up; mixture: the average of the two
    members' probabilities; wide: the wide path alone. ``head_logits`` is the deep head alone
    every time."""
    model = _with_wide_path(combine)
    batch = make_batch()
    out = model(*batch)
    plain = _model(0)  # same seed, no wide path: the same deep branches
    plain.load_state_dict({k: v for k, v in model.state_dict().items()
                           if not k.startswith(("wide", "pooled_"))})
    head = plain(*batch).logits
    torch.testing.assert_close(out.head_logits, head)
    wide = model._wide_logits({"audio": batch[0], "text": batch[1]},
                              {"audio": batch[2], "text": batch[3]})
    if combine == "mixture":
        expect = torch.log(0.5 * torch.softmax(head, -1) + 0.5 * torch.softmax(wide, -1))
        torch.testing.assert_close(out.logits, expect)
    elif combine == "wide":
        torch.testing.assert_close(out.logits, wide)
    else:
        torch.testing.assert_close(out.logits, head + wide)


def test_the_linear_members_weight_sets_the_mixture():
    """``logits = log((1 − w) p_net + w p_wide)`` with ``w`` the model's ``wide_weight``
    buffer: the config's number, 0.5 for "auto" until the trainer sets it; 0 is the network
    alone and 1 the linear member alone; a weight outside [0, 1] or on a model that is no
    mixture is refused; a mixture saved before the buffer existed loads as the plain
    average."""
    model = _with_wide_path("mixture")
    assert model.config.wide_weight == "auto" and float(model.wide_weight) == 0.5
    batch = make_batch()
    head = model(*batch).head_logits
    wide = model._wide_logits({"audio": batch[0], "text": batch[1]},
                              {"audio": batch[2], "text": batch[3]})
    for w in (0.0, 0.25, 1.0):
        model.set_wide_weight(w)
        expect = torch.log((1 - w) * torch.softmax(head, -1) + w * torch.softmax(wide, -1))
        torch.testing.assert_close(model(*batch).logits, expect)
    assert float(_model(0, wide_path=True, wide_weight=0.3).wide_weight) == pytest.approx(0.3)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="in \\[0, 1\\]"):
            model.set_wide_weight(bad)
    with pytest.raises(ValueError, match="mixture"):
        _model(0, wide_path=True, wide_combine="residual").set_wide_weight(0.5)
    old = {k: v for k, v in model.state_dict().items() if k != "wide_weight"}
    fresh = _model(0, wide_path=True)
    fresh.set_wide_weight(0.0)
    fresh.load_state_dict(old)
    assert float(fresh.wide_weight) == 0.5


def test_the_deep_head_starts_at_zero_only_in_the_residual_form():
    """A residual model starts as its wide path (deep logits 0); a mixture's deep member is an
    ordinary model, trained on its own."""
    batch = make_batch()
    residual = _model(0, wide_path=True, wide_combine="residual")
    assert residual(*batch).head_logits.abs().max() == 0
    mixture = _model(0, wide_path=True, wide_combine="mixture")
    assert mixture(*batch).head_logits.abs().max() > 0


def _permute_audio(a, am, perm):
    return a[:, perm], am[:, perm]


@pytest.mark.parametrize("fusion", [False, True])
def test_segment_fusion_pairs_segment_i_audio_with_segment_i_text(fusion):
    """Without positions, the cross-attention branches cannot tell which audio segment goes with
    which text segment: shuffling one modality's segments leaves such a model's output as it
    was. The same-segment fusion pairs segment i's audio with segment i's text, so the same
    shuffle must change it."""
    model = _model(position_encoding=False, segment_fusion=fusion, segment_head=fusion)
    a, t, am, tm = make_batch(b=3, n=6)
    am[:], tm[:] = True, True
    ref = model(a, t, am, tm)
    perm = torch.tensor([1, 0, 3, 2, 5, 4])
    out = model(*_permute_audio(a, am, perm)[:1], t, am[:, perm], tm)
    same = torch.allclose(ref.logits, out.logits, atol=1e-5)
    assert same is not fusion
    if fusion:  # the joint vector too, not only the segment head
        assert not torch.allclose(ref.z_joint, out.z_joint, atol=1e-5)


def test_segment_head_is_a_soft_maximum_over_real_segments():
    from hilbert_pipeline.model.layers import SegmentEvidenceHead

    head = SegmentEvidenceHead(4, 2)
    with torch.no_grad():
        head.score.weight.zero_()
        head.score.bias.zero_()
        head.score.weight[0, 0] = 10.0  # class 0 scores feature 0
    tokens = torch.zeros(2, 5, 4)
    tokens[0, 3, 0] = 1.0  # one marked segment among five
    tokens[1, 4, 0] = 1.0  # marked, but a padded position
    mask = torch.tensor([[True] * 5, [True] * 4 + [False]])
    logits, scores = head(tokens, mask)
    assert torch.isinf(scores[1, 4]).all()
    # log((e^10 + 4) / 5) for the document with one marked segment, 0 without
    assert torch.allclose(logits[0, 0], torch.log((torch.exp(torch.tensor(10.0)) + 4) / 5))
    assert torch.allclose(logits[1], torch.zeros(2), atol=1e-6)
    assert logits[0, 0] > 8.0  # a mean would give 2.0: one segment in five is not diluted


# ------------------------------------------------------------------ unimodal members
def test_members_read_their_own_modality_and_the_network_averages_them():
    """The text member's logits move with the text and never with the audio (and the reverse);
    the network's probabilities are the members' average with the model's weights."""
    torch.manual_seed(0)
    model = HilbertModel(tiny_config(unimodal_members=True)).eval()
    audio, text, am, tm = make_batch()
    out = model(audio, text, am, tm)
    assert set(out.members) == {"text", "audio"}
    torch.testing.assert_close(torch.softmax(out.head_logits, -1),
                               torch.softmax(out.fused_logits, -1))  # weights (1, 0, 0)
    other = model(audio + torch.randn_like(audio), text, am, tm)
    torch.testing.assert_close(other.members["text"].head_logits, out.members["text"].head_logits)
    assert not torch.allclose(other.members["audio"].head_logits,
                              out.members["audio"].head_logits)
    other = model(audio, text + torch.randn_like(text), am, tm)
    torch.testing.assert_close(other.members["audio"].head_logits,
                               out.members["audio"].head_logits)
    assert not torch.allclose(other.members["text"].head_logits, out.members["text"].head_logits)
    model.set_member_weights([0.5, 0.25, 0.25])
    out = model(audio, text, am, tm)
    p = (0.5 * torch.softmax(out.fused_logits, -1)
         + 0.25 * torch.softmax(out.members["text"].head_logits, -1)
         + 0.25 * torch.softmax(out.members["audio"].head_logits, -1))
    torch.testing.assert_close(torch.softmax(out.logits, -1), p)
    for bad in ([0.5, 0.5], [0.6, 0.6, -0.2], [0.5, 0.2, 0.2]):
        with pytest.raises(ValueError, match="member weights"):
            model.set_member_weights(bad)


def test_log_average_probability_is_the_log_of_the_weighted_mean_of_probabilities():
    """The one formula behind the members' average and the linear member's mixture."""
    from hilbert_pipeline.model.model import log_average_probability

    torch.manual_seed(0)
    a, b = torch.randn(3, 4), torch.randn(3, 4) * 5
    got = log_average_probability([a, b], torch.tensor([0.25, 0.75]))
    torch.testing.assert_close(got.exp(), 0.25 * a.softmax(-1) + 0.75 * b.softmax(-1))
    alone = log_average_probability([a, b], torch.tensor([1.0, 0.0]))  # weight 0: left out
    torch.testing.assert_close(alone, a.log_softmax(-1), rtol=0, atol=0)


def test_members_leave_the_fused_network_as_it_would_be_without_them():
    """Same seed: the fused network of a model with members starts with the same weights and,
    in training mode, draws the same dropout as the model without members."""
    torch.manual_seed(3)
    plain = HilbertModel(tiny_config())
    torch.manual_seed(3)
    with_members = HilbertModel(tiny_config(unimodal_members=True))
    state = with_members.state_dict()
    for k, v in plain.state_dict().items():
        torch.testing.assert_close(state[k], v)
    audio, text, am, tm = make_batch()
    plain.train()
    with_members.train()
    torch.manual_seed(5)
    a = plain(audio, text, am, tm).logits
    torch.manual_seed(5)
    b = with_members(audio, text, am, tm).fused_logits
    torch.testing.assert_close(a, b)
    assert not hasattr(HilbertModel(tiny_config(unimodal_members=True, modalities="text")),
                       "members")
    assert not hasattr(HilbertModel(tiny_config(unimodal_members=True, wide_path=True,
                                                wide_combine="residual")), "members")


@pytest.mark.parametrize("input_norm", ["standardize", "layernorm"])
def test_principal_init_whitens_the_first_rows_and_keeps_the_others(input_norm):
    from hilbert_pipeline.model import ModalityProjection

    g = torch.Generator().manual_seed(0)
    # correlated columns of very different scales, as a frozen encoder gives
    x = torch.randn(200, 6, generator=g) @ torch.randn(6, 6, generator=g) * 3 + 5
    torch.manual_seed(1)
    proj = ModalityProjection(6, 8, 0.0, False, input_norm=input_norm)
    proj.set_stats(x.mean(0), x.std(0))
    before = proj.linear.weight.detach().clone()
    assert proj.init_principal(x, fraction=0.5) == 4
    with torch.no_grad():
        y = proj.linear(proj.normalise(x)).double()
    torch.testing.assert_close(y[:, :4].mean(0), torch.zeros(4, dtype=torch.float64),
                               atol=1e-4, rtol=0)
    torch.testing.assert_close(torch.cov(y[:, :4].T), torch.eye(4, dtype=torch.float64),
                               atol=1e-3, rtol=0)
    assert torch.equal(proj.linear.weight[4:], before[4:])
    # the leading row is the axis of largest variance, its largest entry positive
    w = proj.linear.weight[0].detach()
    assert w[w.abs().argmax()] > 0
    assert proj.init_principal(x, fraction=0.0) == 0


def test_principal_init_sets_the_members_projections_too():
    model = _model(0, unimodal_members=True, principal_init=1.0)
    g = torch.Generator().manual_seed(2)
    seg = torch.randn(50, T_DIM, generator=g) * 2
    k = model.init_principal_projections("text", seg)
    assert k == min(16, T_DIM)
    torch.testing.assert_close(model.members["text"].proj["text"].linear.weight[:k],
                               model.proj["text"].linear.weight[:k])
    assert "audio" not in model.members["text"].proj
    with pytest.raises(ValueError, match="no 'video' branch"):
        model.init_principal_projections("video", seg)
