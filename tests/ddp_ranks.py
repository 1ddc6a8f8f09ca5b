"""What a spawned DDP process of a test runs: a module with light imports (torch and the
metrics, no Lightning), so that each fresh process starts in seconds. Spawned, not forked: a
pytest worker has threads by then (tqdm's monitor, W&B's service loop), and a child forked from
a process with threads may hang on a lock one of them held."""

from __future__ import annotations

import socket
from pathlib import Path

import torch
import torch.distributed as dist

from mask_age_gender.models.metrics import TaskMetrics

TASKS = ("mask", "gender", "age")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def head_losses(rank: int, port: int, out: Path) -> None:
    """Rank ``rank`` of 2 scores its own photos' losses; saves what ``compute`` gives it."""
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        metrics = TaskMetrics(loss_tasks=TASKS)
        photos = 3 if rank == 0 else 1  # the processes' shares differ in size
        preds = target = torch.zeros(photos, dtype=torch.long)
        losses = {task: torch.tensor(1.0 + rank + i) for i, task in enumerate(TASKS)}
        metrics.update(preds, target, torch.tensor(10.0 * (rank + 1)), losses)
        scores = {name: float(value) for name, value in metrics.compute().items()}
        torch.save(scores, out / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()
