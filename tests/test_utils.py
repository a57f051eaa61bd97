"""utils.atomic_path: never half-written, and readable like any file the user's shell writes."""

import os
import stat

import pytest

from hilbert_pipeline.utils import atomic_path, write_json


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_gets_the_umask_mode_not_mkstemps_0600(tmp_path, umask_022):
    target = tmp_path / "report.json"
    write_json(target, {"ok": True})
    assert _mode(target) == 0o644
    os.umask(0o027)
    other = tmp_path / "model.pt"
    with atomic_path(other) as tmp:
        tmp.write_bytes(b"weights")
    assert _mode(other) == 0o640


def test_a_replaced_file_keeps_its_own_mode(tmp_path, umask_022):
    target = tmp_path / "metrics.json"
    target.write_text("{}")
    os.chmod(target, 0o664)
    write_json(target, {"macro_f1": 0.5})
    assert _mode(target) == 0o664
    assert '"macro_f1": 0.5' in target.read_text()


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("good")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash while writing")
    assert target.read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
