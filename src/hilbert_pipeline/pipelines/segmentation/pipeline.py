"""``segmentation``: corpus folder → (Whisper transcripts for recordings without one) →
validated documents → ``segments`` / ``documents`` tables."""

from kedro.pipeline import Node, Pipeline

from hilbert_pipeline.pipelines.segmentation.nodes import (
    segment_corpus_node,
    transcribe_node,
    validate_corpus_node,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([
        Node(transcribe_node, inputs=["params:corpus", "params:transcribe"],
             outputs="transcription_report", name="transcribe"),
        Node(validate_corpus_node,
             inputs=["params:corpus", "params:segmentation", "transcription_report"],
             outputs="validated_corpus", name="validate_corpus"),
        Node(segment_corpus_node, inputs=["validated_corpus", "params:segmentation"],
             outputs=["segments", "documents", "corpus_report"], name="segment_corpus"),
    ])
