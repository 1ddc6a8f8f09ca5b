"""Stopping on a NaN or infinite loss without a host sync per step.

``if not torch.isfinite(loss)`` on a GPU tensor makes the CPU wait for the GPU at every step,
which leaves the GPU idle while the next step is launched. ``FirstNonFinite`` instead keeps, on
the loss's device, the first batch whose loss was not finite (its step, losses and photo
indices); ``check`` reads that once, every ``log_every_n_steps`` and at each epoch's end, and
raises ``NonFiniteLoss`` naming the step and the photos.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch


class NonFiniteLoss(FloatingPointError):
    """A NaN or infinite loss; the message names the step and the batch's photos."""


class FirstNonFinite:
    """The first recorded batch with a non-finite loss, held on the device until checked."""

    def __init__(self, stage: str):
        self.stage = stage
        self._state: dict[str, torch.Tensor] | None = None
        self._tasks: list[str] = []

    def record(
        self,
        loss: torch.Tensor,
        task_losses: Mapping[str, torch.Tensor],
        indices: torch.Tensor,
        epoch: int,
        step: int,
    ) -> None:
        """Note this batch if its loss is not finite and none was before: device ops only."""
        values = torch.stack([loss.detach(), *(v.detach() for v in task_losses.values())]).float()
        device = values.device  # torch.full passes the numbers as kernel arguments: no copy
        where = torch.stack([torch.full((), n, device=device) for n in (epoch, step)])
        if self._state is None:
            self._state = {
                "seen": torch.zeros((), dtype=torch.bool, device=device),
                "values": torch.zeros_like(values),
                "where": torch.zeros_like(where),
                "indices": torch.full((len(indices),), -1, dtype=torch.long, device=device),
            }
        state = self._state
        if len(indices) > len(state["indices"]):  # a longer batch than the first: room for it
            more = torch.full((len(indices) - len(state["indices"]),), -1, device=device)
            state["indices"] = torch.cat([state["indices"], more.long()])
        padded = torch.full_like(state["indices"], -1)
        padded[: len(indices)] = indices
        first = ~torch.isfinite(values[0]) & ~state["seen"]
        state["values"] = torch.where(first, values, state["values"])
        state["where"] = torch.where(first, where, state["where"])
        state["indices"] = torch.where(first, padded, state["indices"])
        state["seen"] = state["seen"] | first
        self._tasks = list(task_losses)

    def check(self, paths: Callable[[list[int]], list[str]]) -> None:
        """Raise ``NonFiniteLoss`` if a recorded batch had a non-finite loss (one host sync)."""
        if self._state is None or not bool(self._state["seen"]):
            return
        state = {name: value.cpu() for name, value in self._state.items()}
        loss, *per_task = state["values"].tolist()
        epoch, step = state["where"].tolist()
        photos = "\n  ".join(paths([i for i in state["indices"].tolist() if i >= 0]))
        parts = ", ".join(
            f"{task} {value}" for task, value in zip(self._tasks, per_task, strict=True)
        )
        raise NonFiniteLoss(
            f"{self.stage} loss is {loss} at epoch {epoch}, step {step}: lower optimizer.lr or "
            f"check the inputs. Per task: {parts}. The batch's photos:\n  {photos}"
        )
