"""The generated Numba stage loops vectorise: packed fused multiply-adds in the innermost loop.

The loops are written so that LLVM can vectorise them (contiguous innermost axis, every value
computed before any store, no branch or modulo in the loop, FMA contraction allowed); a change
to the generator that breaks this costs a factor of ~4 silently. The check recompiles the
generated function uncached (a function loaded from Numba's disk cache has no assembly to show)
with its own options and looks for packed double-precision FMAs on 256- or 512-bit registers.
"""

from __future__ import annotations

import re

import numba
import pytest

import pdeforge as pf


def _host_has(*features: str) -> bool:
    from llvmlite import binding

    flags = binding.get_host_cpu_features()
    return all(flags.get(f, False) for f in features)


pytestmark = pytest.mark.skipif(not _host_has("avx2", "fma"), reason="needs an x86 CPU with AVX2 and FMA")

SYSTEMS = {
    "gray-scott-2d": lambda: pf.models.get_model("gray-scott").system(),
    "heat-3d": lambda: pf.PDESystem({"u": "D*laplace(u)"}, params={"D": 1.0}, domain=[(0.0, 1.0)] * 3,
                                    bcs="periodic"),
}


@pytest.mark.parametrize("name", list(SYSTEMS))
def test_serial_stage_loop_is_vectorised(name):
    system = SYSTEMS[name]()
    b = pf.compile(system, target="numba").bind(pf.UniformGrid.from_spec(system.domain, 8))
    b.warm_up(("stage_axpy",))  # compiles (or loads) the variant this small grid uses: serial
    generated = b.kernel.module.KERNELS[("stage_axpy", False)]
    options = {k: v for k, v in generated.targetoptions.items() if k != "cache"}
    fresh = numba.njit(**options)(generated.py_func)
    signature = generated.signatures[0]
    fresh.compile(signature)
    asm = fresh.inspect_asm(signature)
    packed = re.findall(r"vfn?m?(?:add|sub)\d{3}pd\s+[^\n]*%[yz]mm", asm)
    # one packed FMA per neighbour and field at least (Gray-Scott: 2 fields x 5 points)
    assert len(packed) >= {"gray-scott-2d": 10, "heat-3d": 7}[name], asm[:2000]
