"""``segmentation``: corpus folder → (Whisper transcripts for recordings without one) →
validated documents → ``segments`` / ``documents`` tables."""

from kedro.pipeline import Node, Pipeline

from hilbert_pipeline.pipelines.segmentation.nodes import segment_corpus_node, validate_corpus_node
from hilbert_pipeline.pipelines.transcribe.pipeline import transcribe_node_for


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([
        transcribe_node_for("transcription_report", "transcribe"),
        Node(validate_corpus_node,
             inputs=["params:corpus", "params:segmentation", "transcription_report",
                     "params:classes.label_map"],
             outputs="validated_corpus", name="validate_corpus"),
        Node(segment_corpus_node, inputs=["validated_corpus", "params:segmentation"],
             outputs=["segments", "documents", "corpus_report"], name="segment_corpus"),
    ])
