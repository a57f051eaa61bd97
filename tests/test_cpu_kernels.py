"""CPU-kernel pinning (hilbert_pipeline.cpu_kernels): the same seed gives the same weights
whatever kernels the shell asks for, and every entry point pins before torch loads."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hilbert_pipeline import cpu_kernels

ROOT = Path(__file__).resolve().parents[1]
PINNED = cpu_kernels.pinned_values()
needs_x86 = pytest.mark.skipif("ATEN_CPU_CAPABILITY" not in PINNED,
                               reason="kernels are pinned on x86 machines only")
needs_avx2 = pytest.mark.skipif(PINNED.get("ATEN_CPU_CAPABILITY") != "avx2",
                                reason="the AVX2 level is pinned on AVX2 x86 machines only")

# A small HILBERT training (every loss term, attention, MoE, AdamW), one thread, inside
# network_numerics as every fit of the project; prints the capability torch used and a hash of
# the trained weights.
TRAIN = """
import hashlib
import json
import os
import hilbert_pipeline
os.environ.update(json.loads(os.environ.get("AFTER_PIN", "{}")))  # what pinning cannot reach
import torch
from hilbert_pipeline.cpu_kernels import network_numerics
from hilbert_pipeline.model import HilbertConfig, HilbertLoss, HilbertModel
torch.set_num_threads(1)
torch.manual_seed(0)
cfg = HilbertConfig(audio_dim=24, text_dim=40, n_classes=3, d=32, n_heads=4, pool_hops=2,
                    n_experts=3, dropout=0.1, modality_dropout=0.0, wide_path=False)
g = torch.Generator().manual_seed(1)
audio, text = torch.randn(12, 9, 24, generator=g), torch.randn(12, 9, 40, generator=g)
mask = torch.ones(12, 9, dtype=torch.bool)
mask[::3, 6:] = False
y = torch.arange(12) % 3
model = HilbertModel(cfg)
loss_fn = HilbertLoss(cfg, class_counts=[4, 4, 4])
opt = torch.optim.AdamW(list(model.parameters()) + list(loss_fn.parameters()), lr=3e-3)
with network_numerics():
    for _ in range(30):
        res = loss_fn(model(audio, text, mask, mask.clone()), y)
        opt.zero_grad()
        res["total"].backward()
        opt.step()
h = hashlib.sha256()
for _, v in sorted(model.state_dict().items()):
    h.update(v.detach().numpy().tobytes())
print(torch.backends.cpu.get_cpu_capability(), h.hexdigest())
"""


def _train(**env: str) -> tuple[str, str]:
    full = {k: v for k, v in os.environ.items()
            if k not in ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA",
                         "CT2_FORCE_CPU_ISA",
                         cpu_kernels.MODE_VARIABLE)}
    full.update(env)
    out = subprocess.run([sys.executable, "-c", TRAIN], env=full, capture_output=True, text=True,
                         timeout=300, check=True).stdout.split()
    return out[-2], out[-1]


def test_pin_overrides_the_shell_and_native_opts_out():
    env = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "AUTO"}
    state = cpu_kernels.pin(env)
    assert state["mode"] == cpu_kernels.DEFAULT_MODE == "portable" and state["values"] == PINNED
    for key, value in PINNED.items():
        assert env[key] == value
    if PINNED:
        assert state["replaced"]["ATEN_CPU_CAPABILITY"] == "default"
    native = {"ATEN_CPU_CAPABILITY": "default", cpu_kernels.MODE_VARIABLE: "native"}
    state = cpu_kernels.pin(native)
    assert state == {"mode": "native", "values": {}, "replaced": {}}
    assert native["ATEN_CPU_CAPABILITY"] == "default" and "MKL_CBWR" not in native


def test_pinned_level_follows_the_cpu():
    if not cpu_kernels.is_x86():
        assert PINNED == {}
    elif cpu_kernels.has_avx2():
        assert PINNED == {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "COMPATIBLE,STRICT",
                          "ONEDNN_MAX_CPU_ISA": "AVX2", "CT2_FORCE_CPU_ISA": "AVX2"}
        assert cpu_kernels.pinned_values("pinned")["MKL_CBWR"] == "AVX2,STRICT"
    else:
        assert PINNED["ATEN_CPU_CAPABILITY"] == "default"


def test_this_process_is_pinned():
    import torch

    assert cpu_kernels.STATE["mode"] == "portable"
    assert cpu_kernels.fingerprint()["onednn_in_network"] is (not PINNED)
    if "ATEN_CPU_CAPABILITY" in PINNED:
        assert torch.backends.cpu.get_cpu_capability() == PINNED["ATEN_CPU_CAPABILITY"].upper()
    fp = cpu_kernels.fingerprint()
    assert fp["torch"] == torch.__version__ and fp["pinned"] == PINNED


@needs_x86
def test_same_weights_whatever_kernels_the_shell_asks_for():
    cap_default, pinned_default = _train(ATEN_CPU_CAPABILITY="default")
    cap_avx2, pinned_avx2 = _train(ATEN_CPU_CAPABILITY="avx2")
    assert cap_default == cap_avx2 == PINNED["ATEN_CPU_CAPABILITY"].upper()
    assert pinned_default == pinned_avx2
    # the control: left to the shell, the two capabilities give other weights (so the equality
    # above is the pinning's doing, not a training that no kernel choice can change)
    native = {cpu_kernels.MODE_VARIABLE: "native"}
    cap_n1, native_default = _train(ATEN_CPU_CAPABILITY="default", **native)
    cap_n2, native_avx2 = _train(ATEN_CPU_CAPABILITY="avx2", **native)
    assert (cap_n1, cap_n2) == ("DEFAULT", "AVX2")
    assert native_default != native_avx2


@needs_avx2
def test_onednn_is_off_the_networks_path_so_its_kernel_choice_changes_nothing():
    """``portable`` (the default): oneDNN sizes its kernels from the CPU's caches, which no variable fixes, so
    a oneDNN that picks other kernels (here forced after the pinning) must leave the weights as
    they are."""
    import json

    portable = {cpu_kernels.MODE_VARIABLE: "portable"}
    _, pinned = _train(**portable)
    for isa in ("SSE41", "AVX512_CORE"):
        after = json.dumps({"ONEDNN_MAX_CPU_ISA": isa})
        assert _train(AFTER_PIN=after, **portable)[1] == pinned, isa
    # the pinned mode leaves oneDNN on the path (so the equality above is network_numerics')
    pinned_mode = {cpu_kernels.MODE_VARIABLE: "pinned"}
    assert (_train(AFTER_PIN=json.dumps({"ONEDNN_MAX_CPU_ISA": "SSE41"}), **pinned_mode)[1]
            != _train(**pinned_mode)[1])
    # and so does native mode
    native = {cpu_kernels.MODE_VARIABLE: "native", "ATEN_CPU_CAPABILITY": "avx2",
              "MKL_CBWR": "COMPATIBLE,STRICT"}
    assert len({_train(ONEDNN_MAX_CPU_ISA=isa, **native)[1] for isa in ("AVX2", "SSE41")}) == 2


@needs_avx2
def test_mkl_runs_its_compatible_branch_whatever_the_shell_asks_for():
    """MKL honours an AVX2 branch on Intel CPUs only (an AMD CPU takes AUTO): ``portable`` runs
    COMPATIBLE, documented to give the same results on Intel and compatible CPUs, and the MKL
    branch is on the network's path (another branch gives other weights)."""
    portable = {cpu_kernels.MODE_VARIABLE: "portable"}
    _, pinned = _train(MKL_CBWR="AUTO", **portable)
    assert _train(MKL_CBWR="AVX2,STRICT", **portable)[1] == pinned
    assert cpu_kernels.pinned_values("portable")["MKL_CBWR"] == "COMPATIBLE,STRICT"
    native = {cpu_kernels.MODE_VARIABLE: "native", "ATEN_CPU_CAPABILITY": "avx2",
              "ONEDNN_MAX_CPU_ISA": "AVX2"}
    assert len({_train(MKL_CBWR=b, **native)[1] for b in ("COMPATIBLE,STRICT", "AVX2,STRICT")}) == 2


def test_network_numerics_switches_onednn_off_in_portable_mode_only():
    import torch

    before = torch.backends.mkldnn.enabled
    saved = dict(cpu_kernels.STATE)
    try:
        for mode, values in (("pinned", cpu_kernels.pinned_values("pinned")), ("native", {}),
                             ("portable", cpu_kernels.pinned_values("portable"))):
            cpu_kernels.STATE.update({"mode": mode, "values": values})
            with cpu_kernels.network_numerics():
                inside = torch.backends.mkldnn.enabled
            assert torch.backends.mkldnn.enabled == before
            assert inside is (False if mode == "portable" and values else before), mode
    finally:
        cpu_kernels.STATE.clear()
        cpu_kernels.STATE.update(saved)


def test_onednn_stays_off_while_any_thread_is_inside_network_numerics():
    """One process may run two fits at once (a Dask worker does): a block that ends in one thread
    must not switch oneDNN back on under a block still open in another."""
    import threading

    import torch

    if not cpu_kernels._onednn_off():
        pytest.skip("oneDNN is switched only in portable mode on x86 with AVX2")
    before = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = True
    try:
        a_in, a_out, b_in = (threading.Event() for _ in range(3))
        seen = {}

        def first():  # opens, waits for the second to open, closes first
            with cpu_kernels.network_numerics():
                a_in.set()
                b_in.wait(10)
            a_out.set()

        def second():  # opens after the first, looks after the first has closed
            a_in.wait(10)
            with cpu_kernels.network_numerics():
                b_in.set()
                a_out.wait(10)
                seen["after the first closed"] = torch.backends.mkldnn.enabled

        threads = [threading.Thread(target=first), threading.Thread(target=second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert seen == {"after the first closed": False}
        assert torch.backends.mkldnn.enabled is True  # the last block out restores it
    finally:
        torch.backends.mkldnn.enabled = before


# the project's entry points: each must import hilbert_pipeline (which pins) before torch
ENTRY_POINTS = [ROOT / "src" / "hilbert_pipeline" / "settings.py",
                ROOT / "src" / "hilbert_pipeline" / "__main__.py",
                ROOT / "tests" / "conftest.py",
                *sorted((ROOT / "benchmarks").glob("*.py"))]


def _imports_in_order(path: Path) -> list[str]:
    """Module names imported by ``path``, in source order (nested imports included)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append((node.lineno, node.module))
    return [n for _, n in sorted(names)]


@pytest.mark.parametrize("path", ENTRY_POINTS, ids=lambda p: p.name)
def test_entry_point_imports_the_package_before_torch(path):
    names = _imports_in_order(path)
    first_project = next((i for i, n in enumerate(names) if n.split(".")[0] == "hilbert_pipeline"),
                         None)
    first_torch = next((i for i, n in enumerate(names)
                        if n.split(".")[0] in ("torch", "transformers", "sentence_transformers",
                                               "resemblyzer")), None)
    if path.name == "__main__.py":  # kedro imports the project's settings, then the pipelines
        assert first_torch is None
        return
    assert first_project is not None, f"{path.name} never imports hilbert_pipeline"
    assert first_torch is None or first_project < first_torch, (
        f"{path.name} imports torch before hilbert_pipeline, so its kernels are not pinned")


def test_package_import_pins_before_torch_loads():
    """Importing the project (what Kedro, Dask workers and the benchmarks do first) sets the
    variables before torch loads: an import hook records what torch would read."""
    code = ("import os, sys\n"
            "seen = []\n"
            "class Hook:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'torch' and not seen:\n"
            "            seen.append(os.environ.get('ATEN_CPU_CAPABILITY'))\n"
            "        return None\n"
            "sys.meta_path.insert(0, Hook())\n"
            "import hilbert_pipeline.settings, hilbert_pipeline.cluster\n"
            "import torch\n"
            "print(seen[0], torch.backends.cpu.get_cpu_capability())")
    env = dict(os.environ, ATEN_CPU_CAPABILITY="default")
    env.pop(cpu_kernels.MODE_VARIABLE, None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()
    assert out[0] == PINNED.get("ATEN_CPU_CAPABILITY", "default")
    assert out[1] == out[0].upper()
