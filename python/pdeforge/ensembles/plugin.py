"""Shipping a sweep's shared spec to every Dask worker, once, with a worker plugin.

Members tasks carry only ``(token, index, params, seed)``; the spec they share (the system,
the solve options, the kernel modules compiled on the client) reaches each worker through a
``WorkerPlugin``, which the scheduler also hands to every worker that joins later, such as
one the nanny restarts after a crash. Unlike a scattered value or a shared dependency task, a
plugin cannot be lost with a worker, so killed workers never take the spec down with them.
"""

from __future__ import annotations

from distributed import WorkerPlugin

from pdeforge.ensembles.member import forget_spec, register_spec
from pdeforge.ensembles.plan import MemberCommon


class SweepSpecPlugin(WorkerPlugin):
    """Registers a sweep's :class:`MemberCommon` on each worker under ``token``.

    Args:
        token: the sweep invocation's unique token (also in its task keys).
        common: the shared spec.
    """

    def __init__(self, token: str, common: MemberCommon):
        self.token = token
        self.common = common
        self.name = f"pdeforge-sweep-{token}"

    def setup(self, worker) -> None:
        register_spec(self.token, self.common)

    def teardown(self, worker) -> None:
        forget_spec(self.token)
