"""``experiments``: ``dvc exp show`` → one table of every run (data/08_reporting/experiments.*)."""

from kedro.pipeline import Node, Pipeline

from hilbert_pipeline.pipelines.experiments.nodes import collect_experiments_node


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([
        Node(collect_experiments_node, inputs="params:experiments",
             outputs=["experiments_table", "experiments_markdown"], name="collect_experiments"),
    ])
