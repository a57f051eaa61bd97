"""hilbert_pipeline: reference implementation of HILBERT as a Kedro project."""

import os

# Nothing may download from a model hub at run time: every model comes from a package or a local path.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

__version__ = "0.1.0"
