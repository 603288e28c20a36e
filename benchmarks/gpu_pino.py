"""GPU checks of the PyTorch target, the neural closures and PINO, with their benchmarks (one script).

    PYTHONPATH=python python benchmarks/gpu_pino.py            # CUDA (about 2 minutes on an H100)
    PYTHONPATH=python python benchmarks/gpu_pino.py --device cpu --quick   # the same path on a CPU

1. torch finite-difference kernels on the device against the NumPy kernels, every catalogue FD
   model, float64 (1e-12) and float32; a Gray-Scott solve with backend torch on the device
   against Numba; the Smagorinsky closure bound as a torch module on the device against the
   symbolic Smagorinsky kernel (Numba).
2. Gray-Scott RK4 throughput: torch on the device vs Numba and NumPy on the CPU.
3. A short PINO training at LESnets scale (32^3, width 80, 6 layers, 12 modes, dt 0.02, 10
   frames) on the device: seconds per step, physics loss before and after.
4. PINO inference vs the pdeforge LES solver for the same horizon (ratios).

Exits with status 1 if a check fails; prints every figure.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import load_average  # noqa: E402


def check(name: str, ok: bool, detail: str, failures: list) -> None:
    print(f"[{'ok' if ok else 'FAIL'}] {name}: {detail}", flush=True)
    if not ok:
        failures.append(name)


def torch_target_checks(device: str, failures: list) -> None:
    import torch

    import pdeforge as pf
    from pdeforge.codegen.build import compile_system
    from pdeforge.models import get_model, list_models
    from pdeforge.models.burgers_les import closure_system
    from pdeforge.neural.closures import SmagorinskyViscosity

    rng = np.random.default_rng(0)
    for m in list_models():
        if getattr(m, "discretization", "fd") != "fd":
            continue
        system = m.system()
        grid = pf.UniformGrid.from_spec(system.domain, tuple(min(n, 24) for n in m.grid))
        ref = compile_system(system, "numpy").bind(grid)
        y = rng.uniform(0.1, 1.0, ref.size)
        r = ref.rhs(0.3, y)
        scale = max(1.0, np.abs(r).max())
        k64 = compile_system(system, "torch").bind(grid, device=device)
        e64 = np.abs(k64.rhs(0.3, y) - r).max() / scale
        k32 = compile_system(system, "torch").bind(grid, device=device, dtype="float32")
        out32 = k32.rhs_padded(k32.pad(y, 0.3), 0.3).cpu().numpy().ravel()
        e32 = np.abs(out32 - r).max() / np.abs(r).max()
        check(f"torch kernel {m.name} on {device}", e64 < 1e-12 and e32 < 1e-4, f"float64 {e64:.1e}, float32 {e32:.1e}", failures)

    kw = dict(grid=64, t_span=40, method="rk4", dt=1.0, output=pf.Output(save_every=20), progress=False)
    a = pf.solve("gray-scott", backend="numba", **kw)
    b = pf.solve("gray-scott", backend=pf.Torch(device=device), **kw)
    err = max(float(np.abs(a[f] - b[f]).max()) for f in ("u", "v"))
    check(f"gray-scott solve torch ({device}) vs numba", err < 1e-12, f"max diff {err:.1e}", failures)

    model = get_model("burgers-les")
    system, d = model.setup(grid=32)
    ref = compile_system(system, "numba").bind(d["grid"])
    smag = SmagorinskyViscosity(system.params["Cs"], system.params["Delta"])
    kt = pf.compile(closure_system(system.params["nu"]), "torch", closures={"nu_t": smag}).bind(d["grid"], device=device)
    y = rng.standard_normal(ref.size)
    e = np.abs(kt.rhs(0.0, y) - ref.rhs(0.0, y)).max()
    J = abs(kt.jacobian(0.0, y) - ref.jacobian(0.0, y)).max()
    check(f"Smagorinsky closure module on {device} vs symbolic kernel", e < 1e-12 and J < 1e-11,
          f"rhs {e:.1e}, Jacobian (forward AD) {J:.1e}", failures)
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def pino_training(device: str, quick: bool, failures: list) -> None:
    import torch

    from pdeforge.models.les import les_system
    from pdeforge.neural.pino import PINOConfig, PINOTrainer
    from pdeforge.neural.pino_data import spun_up_fields

    if quick:
        dim, grid, width, layers, modes, steps, batch, lr = 2, 32, 16, 2, 8, 40, 4, 1e-2
    else:
        dim, grid, width, layers, modes, steps, batch, lr = 3, 32, 80, 6, 12, 60, 2, 1e-3
    system = les_system(dim, nu=1 / 64, Cs=0.1)
    backend = "torch" if str(device).startswith("cuda") else "numpy"
    t0 = time.perf_counter()
    inputs = spun_up_fields(system, grid, 4, 3, 0.5, seed=0, backend=backend,
                            device=device if backend == "torch" else None)
    prep = time.perf_counter() - t0
    config = PINOConfig(steps_out=10, dt=0.02, width=width, layers=layers, modes=modes, batch_size=batch, lr=lr)
    trainer = PINOTrainer(system, grid, config, device=device, seed=0)
    trainer.fit(inputs, steps=2, progress=False)  # first-call costs (cuFFT plans, kernels) out of the timing
    trainer.step = 0
    trainer.history = type(trainer.history)()
    trainer.scheduler = None
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
    h = trainer.fit(inputs, steps=steps, progress=False)
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
    first, last = np.mean(h.physics[:5]), np.mean(h.physics[-5:])
    mem = torch.cuda.max_memory_allocated() / 2**30 if str(device).startswith("cuda") else float("nan")
    check(f"PINO training ({trainer.model.fno_backend} FNO) {grid}^{dim} width {width} x {layers} on {device}", last < first,
          f"{len(inputs)} inputs ({prep:.1f} s), {steps} steps batch {batch}: {h.wall_s / steps * 1e3:.0f} ms/step, "
          f"physics loss {first:.3e} -> {last:.3e}, peak GPU memory {mem:.2f} GiB", failures)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--quick", action="store_true", help="small sizes (for a CPU dry run)")
    args = p.parse_args(argv)

    import torch

    import pdeforge as pf
    from pdeforge.neural.fno import neuralop_available

    print(f"host load average at the start: {load_average()}", flush=True)

    if str(args.device).startswith("cuda") and not torch.cuda.is_available():
        print("CUDA is not available here; use --device cpu --quick for a dry run")
        return 2
    if not str(args.device).startswith("cuda"):
        torch.set_num_threads(1)
    name = torch.cuda.get_device_name() if str(args.device).startswith("cuda") else "cpu"
    print(f"pdeforge {pf.__version__}, torch {torch.__version__}, device {args.device} ({name}); FNO: "
          + ("neuraloperator" if neuralop_available() else "built-in (neuraloperator is not installed here)") + "\n",
          flush=True)
    failures: list = []
    started = time.perf_counter()

    print("== 1. torch target on the device", flush=True)
    torch_target_checks(args.device, failures)

    print(f"\n== 2. Gray-Scott RK4 throughput ({time.perf_counter() - started:.0f} s)", flush=True)
    import torch_target

    runs = [(128, "20", "numba,numpy,torch,torch-f32")] if args.quick else [
        (256, "100", "numba,numpy,torch,torch-f32"), (1024, "50", "numba,torch,torch-f32")]
    for n, steps, targets in runs:
        torch_target.main(["--grid", str(n), "--steps", steps, "--device", args.device, "--threads", "1",
                           "--targets", targets])

    print(f"\n== 3. PINO training ({time.perf_counter() - started:.0f} s)", flush=True)
    pino_training(args.device, args.quick, failures)

    print(f"\n== 4. PINO inference vs solver, same horizon ({time.perf_counter() - started:.0f} s)", flush=True)
    import pino_inference

    cases = "2-D example" if args.quick else "2-D example,2-D 64^2,LESnets 3-D"
    pino_inference.main(["--device", args.device, "--repeat", "2", "--cases", cases, "--threads", "1"])

    print(f"\ntotal {time.perf_counter() - started:.0f} s; host load average {load_average()}; "
          + (f"FAILED: {', '.join(failures)}" if failures else "all checks passed"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
