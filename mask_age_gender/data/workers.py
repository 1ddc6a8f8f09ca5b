"""How many CPUs this process has, and how many DataLoader workers to give it by default."""

from __future__ import annotations

import os


def default_workers() -> int:
    """DataLoader workers: the CPUs this process may use, less one for the main process, up
    to 8; none with 2 CPUs or fewer, where a worker only takes cycles from the model's threads
    (``make bench`` on 2 cores, warm cache: train/model_only 0.87 with a worker, 1.11 without)."""
    cpus = cpu_count()
    return 0 if cpus <= 2 else min(8, cpus - 1)


def cpu_count() -> int:
    """The CPUs this process may run on (its affinity, which a container or taskset limits)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return cpus or 1
