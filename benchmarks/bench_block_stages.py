"""One rank's block stepped stage by stage, with plain and with line-aligned arrays, beside the
one-process step loops (interleaved A,B,C; best of four rounds).

    python benchmarks/bench_block_stages.py N METHOD heat|gs STEPS      # e.g. 1024 rk4 gs 20

A block steps each stage as one compiled call (rhs and stage combination) after its ghost fill,
where a halo exchange can run; the one-process loops fuse whole steps in machine code (and, for
Euler, block them in time). The block's arrays equal each other bit for bit (checked).
"""
import time, os, sys, numpy as np
from mpi4py import MPI
import pdeforge as pf
from pdeforge.codegen.build import compile_system
from pdeforge.parallel.block import BlockKernel
from pdeforge.parallel.decomposition import decompose
from pdeforge.solvers.explicit.runge_kutta import FixedStepRK
n = int(sys.argv[1]); method = sys.argv[2]; model = sys.argv[3]; steps = int(sys.argv[4])
if model == "heat":
    system = pf.PDESystem({"u": "0.1*laplace(u)"}, domain=[(0, 1), (0, 1)], bcs="dirichlet", name="heat2d")
    ic = lambda x, y: (np.sin(np.pi * x) * np.sin(np.pi * y))[None]; dt = 0.2 / n**2
else:
    from pdeforge.models import get_model
    system = get_model("gray-scott").system()
    ic = lambda x, y: np.stack([1 - 0.5 * np.exp(-((x - 1.25) ** 2 + (y - 1.25) ** 2) * 50) + 0 * x, 0.25 * np.exp(-((x - 1.25) ** 2 + (y - 1.25) ** 2) * 50)]); dt = 0.01
grid = pf.UniformGrid.from_spec(system.domain, (n, n))
kernel = compile_system(system, target="numba")
dec = decompose(grid, MPI.COMM_WORLD, kernel.ghost, (False, False))
blk = BlockKernel(kernel, dec)
class Plain(BlockKernel):
    aligned_stages = False
plain = Plain(kernel, dec)
one = kernel.bind(grid); one.parallel = False
x, y = grid.mesh()
A = FixedStepRK(blk, ic(x, y), 0.0, dt, method); blk.warm_up(A.kernels_used())
B = FixedStepRK(plain, ic(x, y), 0.0, dt, method); B.advance(3 * dt)
assert A.buf[0].shape != B.buf[0].shape
C = FixedStepRK(one, ic(x, y), 0.0, dt, method); one.warm_up(C.kernels_used())
A.advance(3 * dt); C.advance(3 * dt)
best = {"block plain arrays": 1e9, "block aligned arrays": 1e9, "one-process fused": 1e9}
for r in range(4):
    for name, st in (("block plain arrays", B), ("block aligned arrays", A), ("one-process fused", C)):
        t0 = time.perf_counter(); st.advance(st.t + steps * dt); best[name] = min(best[name], time.perf_counter() - t0)
assert np.array_equal(A.cells(), B.cells())
print(model, method, f"{n}^2", {k: round(n * n * steps / v / 1e6) for k, v in best.items()}, "Mcell-steps/s; serial loop", C.run_statistics().get("serial_loop"), "load", os.getloadavg())
