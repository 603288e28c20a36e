"""What every family of a run on several MPI ranks shares: its communicator and where frames go."""

from __future__ import annotations

from pdeforge.solvers.run.pipeline import Job


class OnRanks:
    """A run family on this rank's part of a grid split over ``comm`` (put before the family's
    own class: ``class DistributedX(OnRanks, X)``).

    Frames kept in memory are gathered on every rank (the returned Dataset is the same on
    each); the store gets each rank's block. Callbacks see the whole state on every rank.

    Args:
        job: the run.
        comm: the communicator (more than one rank).
    """

    def __init__(self, job: Job, comm):
        super().__init__(job)
        self.comm = comm
        #: whether frames are gathered on every rank (an in-memory Dataset), else kept as blocks
        self.gather_frames = job.output.in_memory
