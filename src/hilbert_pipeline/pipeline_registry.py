"""Project pipelines."""

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

#: the main job: corpus -> segments -> frozen features -> trained model -> evaluation
DEFAULT_CHAIN = ("segmentation", "embedding", "training", "evaluation")


def register_pipelines() -> dict[str, Pipeline]:
    """Register every pipeline under ``pipelines/<name>/`` by its folder name.

    ``__default__`` chains segmentation -> embedding -> training -> evaluation on the configured
    corpus (the ``corpus`` parameter); ``demo_data``, ``tuning`` and ``inference`` run by name.
    Kedro loads only the pipelines a run asks for (``kedro run --pipelines training`` imports
    ``training`` alone), so the chain is built from those that were loaded.
    """
    pipelines = find_pipelines(raise_errors=True)
    default = Pipeline([])
    for name in DEFAULT_CHAIN:
        if name in pipelines:
            default += pipelines[name]
    pipelines["__default__"] = default
    return pipelines
