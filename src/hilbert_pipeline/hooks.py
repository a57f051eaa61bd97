"""Kedro hooks of the project."""

from __future__ import annotations

from typing import Any

from kedro.framework.hooks import hook_impl


class ParameterCheckHook:
    """Checks every parameter block the run's pipelines read when the run starts, before any
    node: a typo in ``training.model`` stops ``kedro run`` in seconds with the usual one-block
    message, not after segmentation and embedding."""

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any
                            ) -> None:
        # imported here, not at the top: settings.py loads this module for every `kedro` command
        # (--help, viz, registry), and the checks import the libraries (torch: seconds)
        from hilbert_pipeline.checks import check_run_parameters, check_runtime_names

        if run_params.get("runtime_params"):
            check_runtime_names(run_params["runtime_params"], _configured_names(run_params))
        names = sorted(n[len("params:"):] for n in pipeline.inputs() if n.startswith("params:"))
        check_run_parameters({n: catalog.load(f"params:{n}") for n in names})


def _configured_names(run_params: dict[str, Any]) -> list[str]:
    """The top-level parameter names of the run's configuration (conf/base and its
    environment), without the ones given on the command line."""
    from pathlib import Path

    from kedro.framework.project import settings

    conf = Path(run_params["project_path"]) / settings.CONF_SOURCE
    loader = settings.CONFIG_LOADER_CLASS(conf_source=str(conf), env=run_params.get("env"),
                                          **settings.CONFIG_LOADER_ARGS)
    return list(loader["parameters"])
