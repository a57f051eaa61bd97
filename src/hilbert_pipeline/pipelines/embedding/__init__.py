"""``embedding``: segments -> frozen audio and text vectors (``segment_features``)."""
