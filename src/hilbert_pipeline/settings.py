"""Kedro project settings. https://docs.kedro.org/en/stable/kedro_project_setup/settings.html"""

from kedro.config import OmegaConfigLoader

from hilbert_pipeline.hooks import ParameterCheckHook

# every pipeline's parameters are checked when a run starts, before any node
HOOKS = (ParameterCheckHook(),)

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # an environment (conf/local, conf/demo) overrides single keys of a parameter block
    "merge_strategy": {"parameters": "soft"},
    # every pipeline owns conf/base/parameters_<name>.yml and conf/base/catalog_<name>.yml
    "config_patterns": {
        "parameters": ["parameters*", "parameters*/**", "**/parameters*"],
        "catalog": ["catalog*", "catalog*/**", "**/catalog*"],
    },
}
