"""The inference report says which members predict, and why the fused network predicts alone."""

import pandas as pd

from hilbert_pipeline.inference.report import inference_html

EMPTY = pd.DataFrame(columns=["doc_id"])


def _html(members, reason=None) -> str:
    return inference_html(EMPTY, EMPTY, EMPTY, {}, {"note": "no labels"},
                          {"model_path": "m.pt", "corpus": "c", "label_names": ["a", "b"],
                           "members": members, "member_reason": reason})


def test_the_report_says_why_the_fused_network_predicts_alone():
    alone = {"fused": 1.0, "text": 0.0, "audio": 0.0}
    reason = "200 training documents, more than member_max_docs (150)"
    html = _html(alone, reason)
    assert "The fused network predicts alone" in html and reason in html
    assert "neither reached" not in html
    # chosen on held-out predictions: no member reached the fused network's macro-F1
    html = _html(alone)
    assert "The fused network predicts alone" in html and "neither reached" in html
    html = _html({"fused": 0.75, "text": 0.25, "audio": 0.0})
    assert "It averages the fused network and its unimodal members" in html
    assert "text 0.25" in html and "predicts alone" not in html
    assert "unimodal members" not in _html(None)
