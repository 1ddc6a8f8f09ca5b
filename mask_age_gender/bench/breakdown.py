"""Where one training step's time goes: the real Trainer, as ``train`` builds it, with Lightning's
``SimpleProfiler``; its actions are summed into the parts of a step (data fetch, transfer,
forward, metric updates, backward, optimizer step, logging, progress bar, callbacks).

Lightning profiles every hook it calls (``[Strategy]…training_step``, ``[Callback]X.hook``, …)
and the data fetch; the bench adds three actions it does not profile (metric updates inside
``training_step``, the logger connector's per-step work, the step-interval learning-rate
schedule) and one around each step (the epoch loop's ``advance``: fetch, transfer, hooks,
optimization, batch-end hooks). Actions nest (``training_step`` and ``backward`` run inside
``optimizer_step``'s closure), so each action counts its own time only, without the actions
inside it: the parts and ``other`` (the step's time in no named action) add up to the step.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint, ProgressBar, WeightAveraging
from pytorch_lightning.profilers import SimpleProfiler

STEP = "[bench]training_step"  # the epoch loop's advance: one batch, fetch to batch-end hooks
METRICS = "[bench]metric_updates"  # FaceClassifier.train_metrics.update, inside training_step
LOGGING = "[bench]logging"  # the logger connector per step: self.log values, loggers, the bar's
SCHEDULE = "[bench]lr_schedulers"  # step-interval learning-rate schedulers
ABSORBING = ("save_checkpoint",)  # actions whose nested actions count as theirs
PARTS = (  # in the order of a step; "other" is the step's time in no named action
    "data fetch",
    "transfer",
    "forward",
    "metric updates",
    "backward",
    "optimizer step",
    "logging",
    "progress bar",
    "EMA",
    "checkpointing",
    "other callbacks",
    "module hooks",
    "other",
)
HOOK_PARTS = {  # Lightning's hook (the action name's end) -> part; callbacks go by their class
    "train_dataloader_next": "data fetch",
    "batch_to_device": "transfer",
    "transfer_batch_to_device": "transfer",
    "on_before_batch_transfer": "transfer",
    "on_after_batch_transfer": "transfer",
    "training_step": "forward",
    "on_before_backward": "backward",
    "backward": "backward",
    "on_after_backward": "backward",
    "optimizer_step": "optimizer step",
    "optimizer_zero_grad": "optimizer step",
    "on_before_zero_grad": "optimizer step",
    "on_before_optimizer_step": "optimizer step",
    "configure_gradient_clipping": "optimizer step",
    "clip_gradients": "optimizer step",
    "lr_schedulers": "optimizer step",
    "metric_updates": "metric updates",
    "save_checkpoint": "checkpointing",  # ModelCheckpoint's every_n_train_steps, in its hook
    "logging": "logging",
    "on_train_batch_start": "module hooks",
    "on_train_batch_end": "module hooks",
}
CUDA_NOTE = (
    "host-side times: on CUDA the forward, backward and optimizer figures are kernel launch "
    "times of asynchronous work; the wait for the device shows where the host first blocks "
    "(a .item(), a copy to the host, a full CUDA-graph or caching-allocator queue), which may "
    "be another part or 'other'"
)


class StepProfiler(SimpleProfiler):
    """Lightning's ``SimpleProfiler`` (its report goes where ``dirpath``/``filename`` say) that also
    sums, over the measured steps, each action's exclusive time: its duration less the durations
    of the actions that started and stopped inside it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.open: list[list[Any]] = []  # [action, time of the actions inside it so far]
        self.exclusive: dict[str, float] = defaultdict(float)
        self.measuring = False  # set by the step wrapper: only measured steps count
        self.steps = 0  # measured steps
        self.step_seconds = 0.0

    def start(self, action_name: str) -> None:
        super().start(action_name)
        self.open.append([action_name, 0.0])

    def stop(self, action_name: str) -> None:
        super().stop(action_name)
        duration = self.recorded_durations[action_name][-1]
        depth = max(i for i, (name, _) in enumerate(self.open) if name == action_name)
        _, inside = self.open.pop(depth)
        if depth > 0:
            self.open[depth - 1][1] += duration
        if not self.measuring:
            return
        # the callbacks' and the module's on_save_checkpoint hooks are the checkpoint's cost
        owner = next((name for name, _ in self.open if name in ABSORBING), action_name)
        self.exclusive[owner] += duration - inside
        if action_name == STEP:
            self.steps += 1
            self.step_seconds += duration


class StepBreakdown(pl.Callback):
    """Instruments the fit at setup: every step becomes a profiled action, measured after
    ``warm`` steps, and the work Lightning does not profile gets actions of its own. Needs
    ``trainer.profiler`` to be a :class:`StepProfiler`."""

    def __init__(self, warm: int):
        self.warm = warm
        self.parts_of_callbacks: dict[str, str] = {}

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        profiler = trainer.profiler
        if not isinstance(profiler, StepProfiler):
            raise TypeError(f"StepBreakdown needs a StepProfiler, the trainer has {profiler!r}")
        self.parts_of_callbacks = {c.state_key: callback_part(c) for c in trainer.callbacks}
        loop = trainer.fit_loop.epoch_loop
        advance = loop.advance
        started = [0]

        @functools.wraps(advance)
        def step(*args: Any, **kwargs: Any) -> None:
            profiler.measuring = started[0] >= self.warm
            started[0] += 1
            profiler.start(STEP)
            try:
                advance(*args, **kwargs)
            except BaseException:  # StopIteration at an epoch's end: no step was taken
                profiler.measuring = False
                raise
            finally:
                profiler.stop(STEP)
                profiler.measuring = False  # validation and epoch ends are no step's

        loop.advance = step  # the instance's attribute: the loop's run() calls self.advance
        loop.update_lr_schedulers = profiled(profiler, SCHEDULE, loop.update_lr_schedulers)
        connector = trainer._logger_connector  # Lightning profiles none of its per-step work
        for name in ("on_batch_start", "on_batch_end", "update_train_step_metrics"):
            setattr(connector, name, profiled(profiler, LOGGING, getattr(connector, name)))
        metrics = pl_module.train_metrics
        metrics.update = profiled(profiler, METRICS, metrics.update)

    def breakdown(self, profiler: StepProfiler, batch_size: int, on_cuda: bool) -> dict[str, Any]:
        """Milliseconds per measured step of each part, the step, and what the figures are."""
        if profiler.steps == 0:
            raise RuntimeError("no step was measured: more steps than warm-up ones are needed")
        seconds: dict[str, float] = dict.fromkeys(PARTS, 0.0)
        for action, exclusive in profiler.exclusive.items():
            seconds[self.part_of(action)] += exclusive
        step_ms = 1000 * profiler.step_seconds / profiler.steps
        parts = {part: round(1000 * s / profiler.steps, 4) for part, s in seconds.items()}
        return {
            "steps": profiler.steps,
            "batch_size": batch_size,
            "step_ms": round(step_ms, 4),
            "img_s": round(batch_size * 1000 / step_ms, 2),
            "parts_ms": parts,
            "actions_ms": {
                action: round(1000 * s / profiler.steps, 4)
                for action, s in sorted(profiler.exclusive.items(), key=lambda kv: -kv[1])
            },
            "note": CUDA_NOTE
            if on_cuda
            else "host-side times on the CPU, where all work is "
            "synchronous: each part is its compute",
            "first_fetch": "each epoch's first batch is fetched before its first step, outside "
            "the steps: data fetch is that of the other batches",
        }

    def part_of(self, action: str) -> str:
        """The part of a step a profiled action belongs to."""
        if action == STEP:
            return "other"  # the step's own time, in no action inside it
        if action.startswith("[Callback]"):
            key = action.removeprefix("[Callback]").rsplit(".", 1)[0]
            return self.parts_of_callbacks.get(key, "other callbacks")
        return HOOK_PARTS.get(action.rsplit(".", 1)[-1].rsplit("]", 1)[-1], "other")


def callback_part(callback: pl.Callback) -> str:
    if isinstance(callback, ProgressBar):
        return "progress bar"
    if isinstance(callback, WeightAveraging):
        return "EMA"
    if isinstance(callback, ModelCheckpoint):
        return "checkpointing"
    if isinstance(callback, StepBreakdown):
        return "other"  # the bench's own, empty hooks
    return "other callbacks"


def profiled(profiler: SimpleProfiler, action: str, function: Callable) -> Callable:
    """``function``, each call recorded by ``profiler`` as ``action``."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with profiler.profile(action):
            return function(*args, **kwargs)

    return wrapper


def table(breakdown: dict[str, Any]) -> str:
    """The breakdown as a markdown table: ms per step and share of the step, per part."""
    step = breakdown["step_ms"]
    lines = ["| part | ms/step | % of step |", "|---|---|---|"]
    for part, ms in breakdown["parts_ms"].items():
        lines.append(f"| {part} | {ms:.3f} | {100 * ms / step:.1f} |")
    lines.append(f"| **step** | **{step:.3f}** | 100 |")
    return "\n".join(lines)
