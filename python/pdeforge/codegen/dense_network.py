"""Small dense networks as frozen arrays, printed straight into the loops of generated kernels.

A pointwise closure network (:mod:`pdeforge.symbolic.closure_terms`), such as the eddy
viscosity of the learned-closure example, is a few dense layers applied to every cell face.
Through torch each evaluation is a batch of tensor operations of a few microseconds each; on
a small grid those operations, not the arithmetic, are the run time. Here the network is
exported once into plain arrays (:class:`DenseNetwork`) and the Numba target prints its layers
as straight-line code inside the cell loop: the weights ride in the kernels' parameter vector
``p`` (after the PDE parameters) and are read into locals before the loop, so LLVM vectorizes
the whole network across cells. The generated source depends only on the network's *layout*
(widths, activation), which is part of the kernel cache key; new weights reuse the compiled
code.

Straight-line code grows with the number of weights and so does LLVM's compile time (measured
for one loop over the network on a loaded 2-core machine: 2 s for 4 x 16 x 1, 14 s for
4 x 16 x 16 x 1, 60-100 s for 4 x 32 x 32 x 1): it is meant for networks of a few hundred
weights. ReLU vectorizes fully (5 ns per evaluation of 4 x 16 x 1); SiLU and tanh call ``exp``
/ ``tanh`` per value (Numba without SVML does not vectorize them), about 30x slower.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from pdeforge.errors import SolverError

ACTIVATIONS = ("relu", "silu", "tanh")

#: a network's layout: (inputs, hidden widths..., 1 output), activation of the hidden layers
Layout = tuple[tuple[int, ...], str]


@dataclass(frozen=True)
class DenseNetwork:
    """``y = out_scale * (W_L act(... act(W_1 (x / in_scale) + b_1) ...) + b_L)``, one output.

    Attributes:
        weights: per layer an ``(out, in)`` array (torch ``nn.Linear.weight`` layout).
        biases: per layer an ``(out,)`` array.
        activation: activation after every layer but the last, one of :data:`ACTIVATIONS`.
        in_scale: ``(inputs,)`` divisors of the inputs.
        out_scale: factor of the output.
    """

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    activation: str
    in_scale: np.ndarray
    out_scale: float

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            raise SolverError(f"DenseNetwork activation {self.activation!r}: one of {', '.join(ACTIVATIONS)}")
        if not self.weights or len(self.weights) != len(self.biases):
            raise SolverError("DenseNetwork: give one (out, in) weight array and one (out,) bias per layer")
        n_in = np.shape(self.in_scale)
        prev = n_in[0] if len(n_in) == 1 else None
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            w, b = np.asarray(w), np.asarray(b)
            if w.ndim != 2 or b.shape != (w.shape[0],) or w.shape[1] != prev:
                raise SolverError(
                    f"DenseNetwork layer {i}: weight {w.shape} and bias {b.shape} do not chain from {prev} inputs"
                )
            prev = w.shape[0]
        if prev != 1:
            raise SolverError(f"DenseNetwork: the last layer must have one output, got {prev}")

    @property
    def layout(self) -> Layout:
        """(widths from the inputs to the output, activation): what the generated code depends on."""
        widths = (int(np.shape(self.weights[0])[1]),) + tuple(int(np.shape(w)[0]) for w in self.weights)
        return widths, self.activation

    def values(self) -> np.ndarray:
        """The weights as one float64 vector in the order the generated code reads them.

        Per layer the weights row by row, then the biases; the input scale is folded into the
        first layer's columns and the output scale into the last layer (a change of rounding
        only: the result equals the module's to round-off).
        """
        parts = []
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            w = np.asarray(w, dtype=np.float64)
            b = np.asarray(b, dtype=np.float64)
            if i == 0:
                w = w / np.asarray(self.in_scale, dtype=np.float64)[None, :]
            if i == last:
                w, b = w * float(self.out_scale), b * float(self.out_scale)
            parts += [w.reshape(-1), b]
        return np.concatenate(parts)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Evaluate on ``(..., inputs)`` in float64 with NumPy; returns ``(...)``."""
        h = np.asarray(x, dtype=np.float64) / np.asarray(self.in_scale, dtype=np.float64)
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = h @ np.asarray(w, dtype=np.float64).T + np.asarray(b, dtype=np.float64)
            if i < len(self.weights) - 1:
                h = _ACT_NUMPY[self.activation](h)
        return h[..., 0] * float(self.out_scale)


_ACT_NUMPY = {
    "relu": lambda z: np.maximum(z, 0.0),
    "silu": lambda z: z / (1.0 + np.exp(-z)),
    "tanh": np.tanh,
}


def weight_count(layout: Layout) -> int:
    """Number of values :meth:`DenseNetwork.values` holds for a network of ``layout``."""
    widths, _ = layout
    return sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))


def as_dense_network(name: str, closure) -> DenseNetwork:
    """``closure`` as a :class:`DenseNetwork`: itself, or what its ``dense_network()`` method exports.

    Args:
        name: the closure term's name (for the error message).
        closure: a :class:`DenseNetwork` or an object with a ``dense_network()`` method, such
            as :class:`pdeforge.neural.closures.MLPClosure`.
    """
    if isinstance(closure, DenseNetwork):
        return closure
    export = getattr(closure, "dense_network", None)
    if callable(export):
        net = export()
        if isinstance(net, DenseNetwork):
            return net
    raise SolverError(
        f"closures[{name!r}]: the 'numba' target evaluates dense networks only (a "
        "pdeforge.codegen.dense_network.DenseNetwork, or a module with .dense_network() such as "
        f"pdeforge.neural.closures.MLPClosure); got {type(closure).__name__}. Other callables need backend 'torch'"
    )


def check_bound(system_name: str, needed: Mapping[str, int], closures: Mapping, expected: str) -> None:
    """One clear error where ``closures`` misses a closure term in ``needed`` or names one not there.

    Args:
        system_name: the system's name (for the message).
        needed: closure name -> number of arguments of the system's closure terms.
        closures: closure name -> what the user bound.
        expected: what a binding should be, as the message shows it.
    """
    missing = [c for c in needed if c not in closures]
    if missing:
        raise SolverError(
            f"system {system_name!r} uses closure term {missing[0]!r}; bind it with "
            f"closures={{{missing[0]!r}: <{expected}>}} (needed: {', '.join(needed)})"
        )
    extra = [c for c in closures if c not in needed]
    if extra:
        raise SolverError(
            f"closures: {extra[0]!r} is not a closure term of system {system_name!r} "
            f"(its closure terms: {', '.join(needed) or 'none'})"
        )


def dense_networks(system_name: str, needed: Mapping[str, int], closures: Mapping[str, object] | None
                   ) -> dict[str, DenseNetwork]:
    """The exported network of every closure term in ``needed`` (name -> number of arguments)."""
    closures = dict(closures or {})
    check_bound(system_name, needed, closures, "MLPClosure or DenseNetwork")
    nets = {name: as_dense_network(name, closures[name]) for name in sorted(needed)}
    for name, net in nets.items():
        if net.layout[0][0] != needed[name]:
            raise SolverError(
                f"closures[{name!r}]: the network takes {net.layout[0][0]} inputs, the closure term {needed[name]} arguments"
            )
    return nets


def network_lines(layout: Layout, weights: Sequence[str], args: Sequence[str], prefix: str,
                  wrt: int | None = None) -> tuple[list[str], str]:
    """Straight-line scalar code of one evaluation (or one partial derivative) of a network.

    Args:
        layout: the network's layout.
        weights: names of the locals holding :meth:`DenseNetwork.values`, in order.
        args: expressions of the inputs (evaluated once each).
        prefix: prefix of the local names this evaluation defines (unique per call site).
        wrt: None for the value; an input index for the derivative with respect to it
            (forward mode: tangents pushed through the layers beside the values).

    Returns:
        The lines (no indent) and the name of the local holding the result.
    """
    widths, act = layout
    lines = [f"{prefix}x{k} = {a}" for k, a in enumerate(args)]
    prev = [f"{prefix}x{k}" for k in range(widths[0])]
    tangent: list[str | None] | None = None
    if wrt is not None:
        tangent = [None] * widths[0]
        tangent[wrt] = "1.0"
    offset = 0
    n_layers = len(widths) - 1
    for layer, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        w = lambda j, k: weights[offset + j * a + k]  # noqa: E731
        bias = lambda j: weights[offset + a * b + j]  # noqa: E731
        out, dout = [], []
        for j in range(b):
            z = f"{prefix}z{layer}_{j}"
            lines.append(f"{z} = " + " + ".join(f"{w(j, k)}*{prev[k]}" for k in range(a)) + f" + {bias(j)}")
            dz = None
            if tangent is not None:
                terms = [f"{w(j, k)}*{tangent[k]}" if tangent[k] != "1.0" else w(j, k)
                         for k in range(a) if tangent[k] is not None]
                dz = f"{prefix}dz{layer}_{j}"
                lines.append(f"{dz} = " + " + ".join(terms))
            if layer == n_layers - 1:
                out.append(z)
                dout.append(dz)
                continue
            h = f"{prefix}h{layer}_{j}"
            lines += _activation(act, z, h, dz, f"{prefix}dh{layer}_{j}")
            out.append(h)
            dout.append(f"{prefix}dh{layer}_{j}" if dz is not None else None)
        offset += a * b + b
        prev = out
        tangent = dout if tangent is not None else None
    return lines, (tangent[0] if tangent is not None else prev[0])


def _activation(act: str, z: str, h: str, dz: str | None, dh: str) -> list[str]:
    """Lines of ``h = act(z)`` and, with a tangent ``dz``, ``dh = act'(z) dz``."""
    if act == "relu":
        lines = [f"{h} = max({z}, 0.0)"]  # NaN stays NaN (a blow-up is still seen), as torch's relu
        if dz is not None:
            lines.append(f"{dh} = {dz} if {z} > 0.0 else 0.0")
        return lines
    if act == "silu":
        s = f"{h}_s"
        lines = [f"{s} = 1.0 / (1.0 + math.exp(-{z}))", f"{h} = {z} * {s}"]
        if dz is not None:
            lines.append(f"{dh} = ({s} * (1.0 + {z} * (1.0 - {s}))) * {dz}")
        return lines
    lines = [f"{h} = math.tanh({z})"]
    if dz is not None:
        lines.append(f"{dh} = (1.0 - {h} * {h}) * {dz}")
    return lines
