"""torch.compile-d whole RK steps (Inductor C++ on CPU) against the Numba kernels; the CPU thread policy."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import pdeforge as pf  # noqa: E402
from pdeforge.codegen.torch import fused as torch_fused  # noqa: E402
from pdeforge.errors import SolverError  # noqa: E402
from pdeforge.models import get_model  # noqa: E402

GS_IC = {"u": "1 - 0.5*exp(-8*((x-1.25)**2 + (y-1.25)**2))", "v": "0.25*exp(-8*((x-1.25)**2 + (y-1.25)**2))"}


@pytest.mark.skipif(torch_fused.check_inductor_cpu() is not None, reason=str(torch_fused.check_inductor_cpu()))
def test_compiled_steps_equal_the_numba_solver(monkeypatch):
    # a 1-D system and Euler: the smallest graph Inductor compiles (tens of seconds cold on CI),
    # with a Dirichlet side so the compiled ghost fill is exercised as well as the periodic copy
    import torch._inductor.config as inductor_config

    monkeypatch.setattr(inductor_config, "compile_threads", 1)  # no worker pool to start for one kernel
    system = pf.PDESystem({"u": "D*laplace(u) - u**3"}, params={"D": 0.05}, domain=[(0.0, 1.0)],
                          bcs={"x": ({"dirichlet": 0.5}, "neumann")})
    kw = dict(grid=8, t_span=0.2, ic={"u": "sin(3*x)"}, method="euler", dt=0.02, output=pf.Output(save_every=0.1), progress=False)
    ref = pf.solve(system, backend="numba", **kw)
    # no recompilation within the run: the warm-up's first step and every later one see a
    # contiguous state (a strided first input made Dynamo compile the step a second time)
    from torch._dynamo.eval_frame import _debug_get_cache_entry_list

    torch._dynamo.reset()  # forget what earlier tests compiled from the same step function
    got = pf.solve(system, backend=pf.Torch(compile=True), **kw)
    assert got.attrs["steps"] == ref.attrs["steps"] == 10
    step_code = next(c for c in torch_fused.CompiledStep.__init__.__code__.co_consts
                     if getattr(c, "co_name", None) == "step")
    assert len(_debug_get_cache_entry_list(step_code)) == 1
    assert np.abs(got.u.values[-1] - got.u.values[0]).max() > 0.05  # the state moved
    np.testing.assert_allclose(got.u.values, ref.u.values, rtol=0, atol=1e-14)


def test_torch_compile_option_is_checked():
    system = get_model("gray-scott").system()
    # compile is a setting of the torch backend alone: the Numba backend refuses it when it is made
    with pytest.raises(SolverError, match=r"Numba: takes no setting 'compile'; it belongs to the backend pf\.Torch\(compile=\.\.\.\)"):
        pf.solve(system, grid=8, t_span=1.0, ic=GS_IC, dt=0.5, backend=pf.Numba(compile=True), progress=False)
    with pytest.raises(SolverError, match="torch_compile"):
        pf.compile(system, target="torch").bind(pf.UniformGrid.from_spec(system.domain, 8), torch_compile=3)


def test_thread_policy_respects_the_users_choice(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setattr(torch_fused, "_first_seen", before)
    for var in torch_fused.THREAD_ENV:
        monkeypatch.delenv(var, raising=False)
    assert torch_fused.thread_count(64 * 64) == 1  # small grids: one thread
    assert torch_fused.thread_count(1024 * 1024) is None  # large ones: torch's count
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert torch_fused.thread_count(64 * 64) is None
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(torch_fused, "_first_seen", before + 1)  # as after torch.set_num_threads
    assert torch_fused.thread_count(64 * 64) is None
    with torch_fused.threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
