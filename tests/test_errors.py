"""``hilbert_pipeline.errors``: which exceptions are user mistakes (one clean message)."""

from __future__ import annotations

import importlib

from hilbert_pipeline.errors import USER_ERRORS, user_error, user_message


def test_every_listed_class_exists():
    for module, name in USER_ERRORS:
        cls = getattr(importlib.import_module(module), name)  # a typo here would hide errors
        assert isinstance(cls, type) and issubclass(cls, Exception), (module, name)


def test_user_errors_are_found_through_causes_and_bugs_are_not():
    from hilbert_pipeline.cluster import ClusterError
    from hilbert_pipeline.experiment.inference import InferenceError

    err = InferenceError("model x.pt does not match")
    assert user_error(err) is err
    try:
        try:
            raise ClusterError("bad address")
        except ClusterError as inner:
            raise RuntimeError("node failed") from inner
    except RuntimeError as outer:
        assert isinstance(user_error(outer), ClusterError)
    assert user_error(KeyError("bug")) is None
    assert user_error(ValueError("a plain ValueError is not ours")) is None
    msg = user_message(err)
    assert msg.startswith("Error: model x.pt does not match") and "HILBERT_DEBUG=1" in msg
