"""Registry: names, options, errors, cache fingerprints."""

from __future__ import annotations

import numpy as np
import pytest

from hilbert_pipeline.encoders import (
    Encoder,
    EncoderError,
    available_encoders,
    get_encoder,
    register_encoder,
)
from hilbert_pipeline.encoders.audio import EGeMAPSEncoder


def test_builtin_encoders_are_registered():
    assert {"minilm", "hf-text", "resemblyzer", "egemaps", "hf-speech"} <= set(available_encoders())


def test_unknown_name_lists_the_available_ones():
    with pytest.raises(EncoderError, match="unknown encoder 'nope'.*minilm"):
        get_encoder("nope")


def test_bad_option_names_the_encoder():
    with pytest.raises(EncoderError, match="egemaps.*invalid options"):
        get_encoder("egemaps", pooling="max")
    with pytest.raises(EncoderError, match="batch_size"):
        get_encoder("egemaps", batch_size=0)


@pytest.mark.parametrize("name", ["hf-text", "hf-speech"])
def test_missing_local_model_names_the_path(name, tmp_path):
    missing = tmp_path / "no_such_model"
    with pytest.raises(EncoderError, match=str(missing)):
        get_encoder(name, path=str(missing))
    (tmp_path / "empty").mkdir()
    with pytest.raises(EncoderError, match="no config.json"):
        get_encoder(name, path=str(tmp_path / "empty"))
    with pytest.raises(EncoderError, match="'path'"):
        get_encoder(name)


def test_register_custom_encoder_and_refuse_silent_replacement():
    class RMS(EGeMAPSEncoder):
        """Root mean square of the signal: a real (if trivial) audio feature."""

        name = "rms-test"

        @property
        def dim(self) -> int:
            return 1

        def encode_prepared(self, prepared):
            return np.array([[np.sqrt(np.mean(np.square(w)))] for w in prepared], np.float32)

    register_encoder("rms-test", RMS)
    enc = get_encoder("rms-test")
    assert isinstance(enc, Encoder)
    out = enc.encode([np.full(16000, 0.5, np.float32), np.full(8000, 0.25, np.float32)])
    np.testing.assert_allclose(out[:, 0], [0.5, 0.25], rtol=1e-6)
    with pytest.raises(EncoderError, match="already registered"):
        register_encoder("rms-test", EGeMAPSEncoder)


def test_fingerprint_tracks_output_options_not_device_or_batch():
    a = get_encoder("resemblyzer", device="cpu", batch_size=4)
    b = get_encoder("resemblyzer", device="auto", batch_size=64)
    c = get_encoder("resemblyzer", rate=2.0)
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != c.fingerprint()
    assert a.version.startswith("resemblyzer==0.1.4+")
    assert not a.loaded  # building an encoder never loads its weights
