"""The ProbConserv protocol on the generalized porous medium family: tasks, sampling, test sets.

Hansen et al. ("Learning Physical Models that Can Respect Conservation Laws", ICML 2023,
reference code amazon-science/probconserv) train an attentive neural process on functions
drawn from the exact solutions of three GPME instances and test it at one time on a fine grid:

=============  ===========  ================  ===========  =================  ============
task           parameter    training range    test values  domain (t; x)      scored at
=============  ===========  ================  ===========  =================  ============
heat           k            [1, 5]            1, 5         [0, 1]; [0, 2 pi]  t = 0.5
porous-medium  m            [1, 6]            1, 3, 6      [0, 1]; [0, 1]     t = 0.5
stefan         p_star       [0.55, 0.7]       0.5, 0.6     [0, 0.1]; [0, 1]   t = 0.05
=============  ===========  ================  ===========  =================  ============

Every function is seen through 100 context points: 10 times, one drawn uniformly in each tenth
of the time range, times 10 positions drawn uniformly (sorted), all combinations. Training
targets are another 10 x 10 grid, times and positions drawn uniformly and sorted. Test
functions (50 per test value, each with its own context) are scored on 201 equispaced points
at the one scoring time; the metrics are averaged per function and reported as mean and
standard error over the 50 functions.

The values come from the catalogue models' exact solutions (:mod:`pdeforge.models.gpme`,
``heat`` in :mod:`pdeforge.models.diffusion`), and the conservation constraint ``G u = b``
from :func:`pdeforge.models.conservation.constraint`: trapezoid weights on the 201 points,
``b`` the quadrature of the exact solution (``b_from="quadrature"``) or the exact mass ``U(t)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from pdeforge.errors import PDEForgeError
from pdeforge.neural.anp import ContextTargetSet


@dataclass(frozen=True)
class GPMETask:
    """One member of the family as the paper sets it up.

    Attributes:
        model: catalogue model name.
        param: the parameter that varies between functions.
        train_range: ``(low, high)`` of the uniform training distribution of ``param``.
        test_values: the test values (50 functions each).
        t_range: ``(t0, t1)`` of the observed times.
        eval_time: the one time the metrics are computed at.
    """

    model: str
    param: str
    train_range: tuple[float, float]
    test_values: tuple[float, ...]
    t_range: tuple[float, float]
    eval_time: float

    @property
    def x_range(self) -> tuple[float, float]:
        """The model's spatial domain."""
        from pdeforge.models import get_model

        (lo, hi), = get_model(self.model).domain
        return float(lo), float(hi)


TASKS: dict[str, GPMETask] = {
    "heat": GPMETask("heat", "k", (1.0, 5.0), (1.0, 5.0), (0.0, 1.0), 0.5),
    "porous-medium": GPMETask("porous-medium", "m", (1.0, 6.0), (1.0, 3.0, 6.0), (0.0, 1.0), 0.5),
    # p_star = 0.5 lies outside the training range
    "stefan": GPMETask("stefan", "p_star", (0.55, 0.7), (0.5, 0.6), (0.0, 0.1), 0.05),
}


def get_task(name: str) -> GPMETask:
    """The task of a model name (heat, porous-medium, stefan)."""
    try:
        return TASKS[name]
    except KeyError:
        raise PDEForgeError(f"no ProbConserv task {name!r} (tasks: {', '.join(TASKS)})") from None


def exact_on_grid(task: GPMETask, params: np.ndarray, t: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Exact solutions ``u[f, i, j] = u(t[f, i], x[f, j]; params[f])``.

    Args:
        task: the task.
        params: (F,) parameter values.
        t: (F, T) times; x: (F, X) positions.
    """
    from pdeforge.models import get_model

    model = get_model(task.model)
    out = np.empty((len(params), t.shape[1], x.shape[1]))
    for f, p in enumerate(params):
        values = {task.param: float(p)}
        for i, ti in enumerate(t[f]):
            out[f, i] = model.exact_solution(float(ti), x[f], values)["u"]
    return out


def _grid_points(t: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(F, T*X, 2) inputs ``(t, x)``, times first (row-major over the T x X grid)."""
    F, T = t.shape
    X = x.shape[1]
    return np.stack([np.repeat(t[:, :, None], X, axis=2), np.repeat(x[:, None, :], T, axis=1)], axis=-1).reshape(F, T * X, 2)


def _context(task: GPMETask, params: np.ndarray, rng: np.random.Generator, n_t: int, n_x: int):
    F = len(params)
    t0, t1 = task.t_range
    x0, x1 = task.x_range
    # one time in each of n_t equal slices of the range: the context covers the whole history
    t = t0 + (t1 - t0) * (np.arange(n_t) + rng.random((F, n_t))) / n_t
    x = x0 + (x1 - x0) * np.sort(rng.random((F, n_x)), axis=1)
    return _grid_points(t, x), exact_on_grid(task, params, t, x).reshape(F, -1, 1)


def _tensors(*arrays, device):
    return [torch.as_tensor(a, dtype=torch.float32, device=device) for a in arrays]


def sample_training_set(task: GPMETask, n_functions: int, rng: np.random.Generator, n_context: tuple[int, int] = (10, 10),
                        n_target: tuple[int, int] = (10, 10), device="cpu") -> ContextTargetSet:
    """Training functions: parameter uniform in the training range, context and target grids.

    Args:
        task: the task.
        n_functions: number of functions.
        rng: numpy generator (seeds the parameters and every sampled point).
        n_context: (times, positions) of the context grid.
        n_target: (times, positions) of the target grid.
        device: torch device of the tensors.
    """
    lo, hi = task.train_range
    params = rng.uniform(lo, hi, n_functions)
    cx, cy = _context(task, params, rng, *n_context)
    t0, t1 = task.t_range
    x0, x1 = task.x_range
    t = t0 + (t1 - t0) * np.sort(rng.random((n_functions, n_target[0])), axis=1)
    x = x0 + (x1 - x0) * np.sort(rng.random((n_functions, n_target[1])), axis=1)
    tx, ty = _grid_points(t, x), exact_on_grid(task, params, t, x).reshape(n_functions, -1, 1)
    return ContextTargetSet(*_tensors(cx, cy, tx, ty, params[:, None], device=device))


@dataclass
class EvaluationSet:
    """Test functions with their context, the scoring grid and the conservation constraint.

    Attributes:
        task: the task.
        params: (F,) parameter value of each function (``per_value`` functions per test value,
            grouped by value).
        data: context tensors; targets = the ``n_points`` positions at ``task.eval_time``.
        x: (n_points,) scoring positions.
        truth: (F, n_points) exact values there (float64).
        weights: (n_points,) trapezoid weights: ``G = weights[None, :]``.
        b: (F,) right-hand side of the constraint (see ``b_from``).
        exact_mass: (F,) the exact mass ``U(eval_time)``.
    """

    task: GPMETask
    params: np.ndarray
    data: ContextTargetSet
    x: np.ndarray
    truth: torch.Tensor
    weights: torch.Tensor
    b: torch.Tensor
    exact_mass: torch.Tensor


def evaluation_set(task: GPMETask, per_value: int, rng: np.random.Generator, n_points: int = 201,
                   n_context: tuple[int, int] = (10, 10), b_from: str = "quadrature",
                   values: Sequence[float] | None = None, device="cpu") -> EvaluationSet:
    """The test set: ``per_value`` functions per test value, scored at ``task.eval_time``.

    Args:
        task: the task.
        per_value: functions per test value (50 in the paper).
        rng: numpy generator for the context points.
        n_points: equispaced scoring points over the domain, ends included (201).
        n_context: (times, positions) of each function's context grid.
        b_from: "quadrature" (default; ``b = G u_exact``, which the discrete exact profile
            satisfies) or "exact" (``b = U(t)``, as the reference code).
        values: test values (default: the task's).
        device: torch device of the tensors.
    """
    from pdeforge.models.conservation import constraint

    values = tuple(task.test_values if values is None else values)
    params = np.repeat(np.asarray(values, dtype=float), per_value)
    F = len(params)
    cx, cy = _context(task, params, rng, *n_context)
    x = np.linspace(*task.x_range, n_points)
    t = np.full((F, 1), task.eval_time)
    truth = exact_on_grid(task, params, t, np.broadcast_to(x, (F, n_points)))[:, 0]
    tx = _grid_points(t, np.broadcast_to(x, (F, n_points)))
    b_of, mass_of = {}, {}
    for v in values:
        c = constraint(task.model, x, [task.eval_time], params={task.param: v}, b_from=b_from)
        b_of[v] = float(c.b[0])
        mass_of[v] = float(constraint(task.model, x, [task.eval_time], params={task.param: v}, b_from="exact").b[0])
        weights = c.weights
    data = ContextTargetSet(*_tensors(cx, cy, tx, truth[..., None], params[:, None], device=device))

    def as64(a):
        return torch.as_tensor(np.asarray(a, dtype=float), dtype=torch.float64, device=device)

    return EvaluationSet(task, params, data, x, as64(truth), as64(weights), as64([b_of[p] for p in params]),
                         as64([mass_of[p] for p in params]))
