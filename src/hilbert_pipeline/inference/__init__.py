"""Inference on new documents (no Kedro): predictions and explanations (:mod:`.predict`) and
the HTML report (:mod:`.report`); what a checkpoint promises is :mod:`hilbert_pipeline.contract`."""
