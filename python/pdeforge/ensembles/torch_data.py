"""A PyTorch ``Dataset`` over a sweep store, for training neural operators and closures on
sweep output instead of generating simulations inside the training process.

PyTorch is imported when this module is, and this module only when ``pdeforge.SweepDataset``
is first used, so ``import pdeforge`` never pulls in torch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np
import torch

from pdeforge.ensembles.member import STATUS_NAMES
from pdeforge.ensembles.store import SPEC_ATTR
from pdeforge.ensembles.values import SweepSpecError

LAYOUTS = ("trajectory", "pairs")


class SweepDataset(torch.utils.data.Dataset):
    """The members of a sweep store as training samples.

    Two layouts:

    - ``"trajectory"`` (default): one item per member, a dict with ``fields`` (tensor
      ``(T, C, *grid)``: the C selected fields at the T selected times), ``params`` (tensor
      ``(P,)``: the member's swept parameter values, in :attr:`param_names` order), ``t``
      (tensor ``(T,)``), ``member`` and ``seed`` (ints; seed is -1 when no seeds were swept).
    - ``"pairs"``: one item per (member, time k) with a frame ``lag`` steps later: ``input``
      (tensor ``(C, *grid)`` at ``t[k]``), ``target`` (at ``t[k + lag]``), ``params``, ``t``
      (the input time), ``dt`` (the time between them), ``member`` and ``seed``: the samples
      of a one-step (autoregressive) neural operator.

    Only members whose status is in ``statuses`` are used (completed ones by default: a
    blown-up member holds NaN after its blow-up, a failed one nothing). The default
    ``torch.utils.data.default_collate`` batches the dicts.

    Example:
        >>> import pdeforge as pf
        >>> from torch.utils.data import DataLoader
        >>> pf.sweep("fitzhugh-nagumo", params={"k": "0:0.01:3"}, seeds=range(8),
        ...          grid=(32, 32), t_span=1.0, save_every=0.1, out="fhn.zarr")     # doctest: +SKIP
        >>> data = pf.SweepDataset("fhn.zarr", layout="pairs", lag=1)               # doctest: +SKIP
        >>> len(data)                     # 24 members x 10 (t_k, t_k+1) pairs      # doctest: +SKIP
        240
        >>> batch = next(iter(DataLoader(data, batch_size=16, shuffle=True)))       # doctest: +SKIP
        >>> batch["input"].shape, batch["target"].shape, batch["params"].shape      # doctest: +SKIP
        (torch.Size([16, 2, 32, 32]), torch.Size([16, 2, 32, 32]), torch.Size([16, 1]))

    Args:
        path: the ``.zarr`` store written by :func:`pdeforge.sweep`.
        fields: fields to stack as channels, in this order (default: all, in store order).
        layout: "trajectory" or "pairs".
        lag: for "pairs", how many saved frames the target is after the input (>= 1).
        times: which saved frames to use: a slice or a list of indices along ``t`` (default all).
        statuses: member statuses to include, names from "completed", "blew_up", "failed",
            "pending".
        dtype: torch dtype of the returned tensors (default float32).
        device: torch device the tensors are put on ("cpu" by default; another device only
            with ``DataLoader(num_workers=0)``).
        in_memory: read the selected members into memory once (fast epochs for stores that
            fit); otherwise each item reads its member's chunk from disk.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fields: Sequence[str] | None = None,
        layout: str = "trajectory",
        lag: int = 1,
        times: slice | Sequence[int] | None = None,
        statuses: Sequence[str] = ("completed",),
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
        in_memory: bool = False,
    ):
        import zarr

        self.path = str(path)
        try:
            group = zarr.open_group(self.path, mode="r")
            spec = group.attrs.get(SPEC_ATTR)
        except Exception:
            spec = None
        if not isinstance(spec, str):
            raise SweepSpecError(f"{self.path!r} is not a pdeforge sweep store")
        if layout not in LAYOUTS:
            raise SweepSpecError(f"layout {layout!r}: use one of {', '.join(LAYOUTS)}")
        stored = json.loads(group.attrs["fields"])
        self.fields = list(fields) if fields is not None else stored
        unknown = [f for f in self.fields if f not in stored]
        if unknown or not self.fields:
            raise SweepSpecError(f"fields: {unknown[0] if unknown else 'none'!r} is not a field of the store (fields: {', '.join(stored)})")
        bad = [s for s in statuses if s not in STATUS_NAMES]
        if bad:
            raise SweepSpecError(f"statuses: {bad[0]!r} is not a status ({', '.join(STATUS_NAMES)})")
        self.layout = layout
        self.dtype = dtype
        self.device = torch.device(device)

        all_times = np.asarray(group["t"][:], dtype=float)
        idx = np.arange(len(all_times))
        self.frame_index = idx[times] if isinstance(times, slice) else (idx if times is None else np.asarray(times, dtype=int))
        if self.frame_index.size == 0 or self.frame_index.min() < 0 or self.frame_index.max() >= len(all_times):
            raise SweepSpecError(f"times: select frames among 0..{len(all_times) - 1}")
        self.times = all_times[self.frame_index]
        if layout == "pairs" and not (isinstance(lag, int) and 1 <= lag < len(self.frame_index)):
            raise SweepSpecError(f"lag must be a whole number from 1 to {len(self.frame_index) - 1}, got {lag!r}")
        self.lag = lag

        status = np.asarray(group["status"][:])
        codes = [STATUS_NAMES.index(s) for s in statuses]
        self.members = np.flatnonzero(np.isin(status, codes))
        self.param_names: list[str] = json.loads(group.attrs["swept_parameters"])
        params = np.stack([np.asarray(group[n][:], dtype=float) for n in self.param_names], axis=1) if self.param_names \
            else np.zeros((len(status), 0))
        self._params = params[self.members]
        self._seeds = (np.asarray(group["seed"][:]) if "seed" in group else np.full(len(status), -1))[self.members]
        self.coordinates = {a: np.asarray(group[a][:], dtype=float) for a in json.loads(group.attrs["axes"])}
        self._group = None
        self._cache: np.ndarray | None = None
        if in_memory:
            self._cache = self._read_all()

    # ------------------------------------------------------------------------------------
    def __len__(self) -> int:
        if self.layout == "trajectory":
            return len(self.members)
        return len(self.members) * (len(self.frame_index) - self.lag)

    def __getitem__(self, i: int) -> dict:
        if not -len(self) <= i < len(self):
            raise IndexError(f"item {i} of a dataset of {len(self)}")
        i = int(i) % len(self)
        if self.layout == "trajectory":
            data = self._member(i)
            return {
                "fields": self._tensor(data), "params": self._tensor(self._params[i]),
                "t": self._tensor(self.times), "member": int(self.members[i]), "seed": int(self._seeds[i]),
            }
        per = len(self.frame_index) - self.lag
        m, k = divmod(i, per)
        data = self._member(m)
        return {
            "input": self._tensor(data[k]), "target": self._tensor(data[k + self.lag]),
            "params": self._tensor(self._params[m]), "t": self._tensor(self.times[k]),
            "dt": self._tensor(self.times[k + self.lag] - self.times[k]),
            "member": int(self.members[m]), "seed": int(self._seeds[m]),
        }

    def __getstate__(self):  # DataLoader worker processes reopen the store themselves
        state = dict(self.__dict__)
        state["_group"] = None
        return state

    def arrays(self) -> dict[str, np.ndarray]:
        """The selected members as NumPy arrays, for code that wants whole arrays, not items.

        Returns:
            dict with ``fields`` ``(N, T, C, *grid)``, ``params`` ``(N, P)``, ``member`` and
            ``seed`` ``(N,)``, ``t`` ``(T,)`` and one entry per spatial coordinate.
        """
        data = self._cache if self._cache is not None else self._read_all()
        return {"fields": data, "params": self._params.copy(), "member": self.members.copy(),
                "seed": self._seeds.copy(), "t": self.times.copy(), **{a: x.copy() for a, x in self.coordinates.items()}}

    # ------------------------------------------------------------------------------------
    def _tensor(self, array) -> torch.Tensor:
        return torch.as_tensor(np.asarray(array), dtype=self.dtype).to(self.device)

    def _open(self):
        if self._group is None:
            import zarr

            self._group = zarr.open_group(self.path, mode="r")
        return self._group

    def _member(self, position: int) -> np.ndarray:
        """Frames ``(T, C, *grid)`` of the ``position``-th selected member."""
        if self._cache is not None:
            return self._cache[position]
        g = self._open()
        m = int(self.members[position])
        return np.stack([np.asarray(g[f][m])[self.frame_index] for f in self.fields], axis=1)

    def _read_all(self) -> np.ndarray:
        if not len(self.members):
            return np.zeros((0, len(self.frame_index), len(self.fields), *(len(x) for x in self.coordinates.values())))
        return np.stack([self._member(p) for p in range(len(self.members))])
