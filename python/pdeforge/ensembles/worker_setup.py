"""Preload of the worker processes of the sweep's own LocalCluster.

Ctrl-C in a terminal sends SIGINT to every process of the foreground group, the worker
processes included, and a batch scheduler at a job's time limit sends SIGTERM to every process
of the job. The client alone should react (write what is finished, then shut the cluster down
in order); workers that died of the signal on their own would print a traceback each and lose
their finished results. So they ignore both.
"""

from __future__ import annotations

import signal
import threading


def dask_setup(worker) -> None:
    """Called by dask.distributed in each worker process as it starts."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
