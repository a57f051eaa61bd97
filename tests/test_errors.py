"""``hilbert_pipeline.errors``: which exceptions are user mistakes (one clean message)."""

from __future__ import annotations

import importlib

from hilbert_pipeline.errors import UserError, user_error, user_message

#: every user-facing error class of the project (module, name)
USER_ERRORS = (
    ("hilbert_pipeline.corpus.validation", "CorpusValidationError"),
    ("hilbert_pipeline.corpus.manifest", "ManifestError"),
    ("hilbert_pipeline.corpus.transcripts", "TranscriptError"),
    ("hilbert_pipeline.audio", "AudioError"),
    ("hilbert_pipeline.model.config", "ConfigError"),
    ("hilbert_pipeline.training.params", "ParamsError"),
    ("hilbert_pipeline.folds", "FoldError"),
    ("hilbert_pipeline.documents", "DataError"),
    ("hilbert_pipeline.documents", "LabelError"),
    ("hilbert_pipeline.training.trainer", "TrainingError"),
    ("hilbert_pipeline.training.checkpoint", "CheckpointError"),
    ("hilbert_pipeline.evaluation.methods", "MethodError"),
    ("hilbert_pipeline.inference.predict", "InferenceError"),
    ("hilbert_pipeline.encoders.base", "EncoderError"),
    ("hilbert_pipeline.encoders.features", "SegmentsError"),
    ("hilbert_pipeline.tuning.study", "TuningConfigError"),
    ("hilbert_pipeline.tuning.space", "SearchSpaceError"),
    ("hilbert_pipeline.tuning.objective", "TuningDataError"),
    ("hilbert_pipeline.tuning.report", "NoCompletedTrialError"),
    ("hilbert_pipeline.demo.synthesis", "SynthesisError"),
    ("hilbert_pipeline.demo.regimes", "RegimeError"),
    ("hilbert_pipeline.cluster", "ClusterError"),
    ("hilbert_pipeline.utils", "DeviceError"),
)


def test_every_user_facing_error_derives_from_the_one_base_class():
    for module, name in USER_ERRORS:
        cls = getattr(importlib.import_module(module), name)
        assert issubclass(cls, UserError), (module, name)
    # still ValueErrors for code that catches those (and the trial error a RuntimeError)
    from hilbert_pipeline.tuning.report import NoCompletedTrialError

    assert issubclass(UserError, ValueError) and issubclass(NoCompletedTrialError, RuntimeError)


def test_user_errors_are_found_through_causes_and_bugs_are_not():
    from hilbert_pipeline.cluster import ClusterError
    from hilbert_pipeline.inference.predict import InferenceError

    err = InferenceError("model x.pt does not match")
    assert user_error(err) is err
    try:
        try:
            raise ClusterError("bad address")
        except ClusterError as inner:
            raise RuntimeError("node failed") from inner
    except RuntimeError as outer:
        assert isinstance(user_error(outer), ClusterError)
    assert user_error(KeyError("bug")) is None
    assert user_error(ValueError("a plain ValueError is not ours")) is None
    msg = user_message(err)
    assert msg.startswith("Error: model x.pt does not match") and "HILBERT_DEBUG=1" in msg


def test_a_missing_input_is_one_block_naming_the_pipeline_that_writes_it(tmp_path):
    """`kedro run --pipelines training` on a fresh project (before embedding): one block that
    names the missing dataset and what to run first, no traceback."""
    from kedro_helpers import make_project_copy, run_kedro

    project = make_project_copy(tmp_path / "project")
    proc = run_kedro(project, "run", "--pipelines", "training", check=False, timeout=300)
    assert proc.returncode == 1
    err = proc.stderr
    assert "the input `segment_features` is missing" in err
    assert "segment_features.pkl does not exist" in err
    assert "`kedro run --pipelines segmentation,embedding` first" in err
    assert "Traceback" not in err and "DatasetError" not in err


def test_missing_input_is_read_from_kedros_own_load_error(tmp_path):
    from kedro.io import DataCatalog
    from kedro_datasets.pickle import PickleDataset

    from hilbert_pipeline.errors import missing_input, missing_input_message

    catalog = DataCatalog({"segment_features": PickleDataset(filepath=str(tmp_path / "x.pkl"))})
    try:
        catalog.load("segment_features")
    except Exception as exc:  # noqa: BLE001 - the exception is the subject of the test
        found = missing_input(exc)
    assert found == ("segment_features", str(tmp_path / "x.pkl"))
    assert missing_input(ValueError("segment_features: Failed while loading data")) is None
    text = missing_input_message("evaluation_folds", "data/05_model_input/folds.csv")
    assert "written by the `evaluation` pipeline" in text
    assert "--pipelines segmentation,embedding,evaluation" in text


def test_parameters_are_checked_when_the_run_starts(tmp_path):
    """A typo in training.model stops a full `kedro run` before segmentation reads the corpus
    (here: a corpus folder that does not exist, which segmentation would report first)."""
    from kedro_helpers import make_project_copy, run_kedro

    project = make_project_copy(tmp_path / "project")
    # a misspelt key inside a block, and a misspelt block name (which Kedro would add as a new
    # parameter that nothing reads; refused with the configured names to choose from)
    for given, said in [("training.model.lamda_cka=0.3",
                         "training.model has unknown keys ['lamda_cka']"),
                        ("trainig.optim.epochs=3",
                         "unknown parameter 'trainig' (did you mean 'training'?")]:
        proc = run_kedro(project, "run", "--params", f"corpus={tmp_path / 'nowhere'},{given}",
                         check=False, timeout=300)
        assert proc.returncode == 1
        assert said in proc.stderr
        assert "nowhere" not in proc.stderr and "Traceback" not in proc.stderr


def test_check_run_parameters_names_the_block():
    import pytest

    from hilbert_pipeline.checks import check_run_parameters
    from hilbert_pipeline.model import ConfigError
    from hilbert_pipeline.training.params import ParamsError

    base = {"seed": 0, "model": {}, "optim": {}}
    check_run_parameters({"training": base, "evaluation": {"seed": 0, "methods": ["hilbert"]}})
    with pytest.raises(ParamsError, match="parameters 'training'.*wide_combine"):
        check_run_parameters({"training": {**base, "model": {"wide_combine": "auto"}}})
    with pytest.raises(ParamsError, match="unknown methods"):
        check_run_parameters({"evaluation": {"methods": ["hilbert"],
                                             "method_overrides": {"hilbrt": {}}}})
    with pytest.raises(ParamsError, match="no_dual: unknown keys \\['lamda'\\]"):
        check_run_parameters({"evaluation": {"methods": ["hilbert"],
                                             "method_overrides": {"no_dual": {"lamda": 1}}}})
    for bad, match in [({"n_splits": "abc"}, "n_splits must be an integer >= 2, got 'abc'"),
                       ({"n_splits": 1}, "n_splits must be an integer >= 2"),
                       ({"n_repeats": 0}, "n_repeats must be an integer >= 1"),
                       ({"n_jobs": 1.5}, "n_jobs must be an integer >= 1"),
                       ({"seed": True}, "seed must be an integer, got True"),
                       ({"ci": "bootstrap"}, "ci must be 'corrected_t' or 't'"),
                       ({"progress": "yes"}, "progress must be true or false")]:
        with pytest.raises(ParamsError, match=match):
            check_run_parameters({"evaluation": {"seed": 0, "methods": ["hilbert"], **bad}})
    check_run_parameters({"evaluation": {"seed": -3, "methods": ["hilbert"], "n_splits": 2,
                                         "n_repeats": 1, "n_jobs": 1, "ci": "t",
                                         "progress": False}})
    with pytest.raises(ParamsError, match="parameters 'tuning': tuning.n_trials must be an "
                                          "integer >= 1, got 0"):  # before a study is created
        check_run_parameters({"tuning": {"seed": 0, "n_trials": 0, "search_space": {}}})
    with pytest.raises(ParamsError, match="tuning.timeout must be a number of seconds"):
        check_run_parameters({"tuning": {"seed": 0, "n_trials": 2, "timeout": -1,
                                         "search_space": {}}})
    with pytest.raises(ParamsError, match="segmentation'.*min_duration"):
        check_run_parameters({"segmentation": {"min_duration": 20.0, "max_duration": 10.0}})
    assert not issubclass(ParamsError, ConfigError)


def test_runtime_parameters_must_name_a_configured_block():
    import pytest

    from hilbert_pipeline.checks import check_runtime_names
    from hilbert_pipeline.training.params import ParamsError

    known = ["corpus", "evaluation", "training"]
    check_runtime_names({"training": {"optim": {"epochs": 3}}, "corpus": "/x"}, known)
    check_runtime_names(None, known)
    with pytest.raises(ParamsError, match="'trainig' \\(did you mean 'training'\\?"):
        check_runtime_names({"trainig": {"optim": {"epochs": 3}}}, known)
    with pytest.raises(ParamsError, match="'zzz' \\(the parameters are: corpus, evaluation"):
        check_runtime_names({"zzz": 1}, known)


def test_a_device_this_machine_cannot_honour_is_one_message():
    import pytest
    import torch

    from hilbert_pipeline.checks import check_run_parameters
    from hilbert_pipeline.utils import DeviceError, resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(DeviceError, match="unknown device 'gpu': use auto, cpu, cuda"):
        resolve_device("gpu")
    with pytest.raises(DeviceError, match="unknown device 'meta'"):
        resolve_device("meta")
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(DeviceError, match="CUDA GPU"):
        resolve_device(f"cuda:{n}")  # one past the last GPU (cuda:0 on a machine without one)
    if n == 0:
        with pytest.raises(DeviceError, match="no CUDA GPU on this machine.*use auto or cpu"):
            resolve_device("cuda")
    from hilbert_pipeline.training.params import ParamsError

    for name in ("embedding", "inference", "training"):  # checked when the run starts
        with pytest.raises(ParamsError, match=f"parameters '{name}': unknown device 'gpu'"):
            check_run_parameters({name: {"device": "gpu"}})
        # the name alone: a cluster's GPUs are its workers', checked where the work runs
        check_run_parameters({name: {"device": "cuda", "seed": 0}})
