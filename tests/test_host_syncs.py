"""No host sync per training step (issue #18): on a GPU each one makes the CPU wait for the GPU,
which then idles while the next step is launched.

On the CPU nothing waits, so the test counts the calls that would: the tensor methods that copy
a value to the host (``item``, ``tolist``, ``cpu``, ``numpy``, ``bool``, ``int``, ``float``),
patched to count, over a whole tiny run of 10 and of 30 training steps. What the run does
once (set-up, epoch ends, predictions) cancels out; what it does per step shows in the
difference. On a GPU, ``torch.cuda.set_sync_debug_mode`` makes every synchronising call an
error instead.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig

from mask_age_gender.train import train
from mask_age_gender.training.callbacks import run_callbacks

HOST_COPIES = ("item", "tolist", "cpu", "numpy", "__bool__", "__int__", "__float__")
LOG_EVERY = 10  # trainer.log_every_n_steps: the non-finite loss check reads the device then


def count_host_copies(monkeypatch: pytest.MonkeyPatch) -> Counter:
    calls: Counter = Counter()
    for name in HOST_COPIES:
        original = getattr(torch.Tensor, name)

        def counted(self: torch.Tensor, *args, _name: str = name, _f: Callable = original, **kw):
            calls[_name] += 1
            return _f(self, *args, **kw)

        monkeypatch.setattr(torch.Tensor, name, counted)
    return calls


def host_copies_of_a_run(
    train_config: Callable[..., DictConfig], monkeypatch: pytest.MonkeyPatch, steps: int, *extra
) -> Counter:
    cfg = train_config(
        "data.batch_size=4",
        "trainer.max_epochs=1",
        f"+trainer.limit_train_batches={steps}",
        f"trainer.log_every_n_steps={LOG_EVERY}",
        "callbacks.progress_bar={_target_:mask_age_gender.training.progress.progress_bar,style:lines}",
        *extra,
    )
    cfg.paths.output_dir = str(Path(cfg.paths.output_dir) / str(steps))
    with monkeypatch.context() as patch:
        calls = count_host_copies(patch)
        train(cfg)
    return calls


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param([], id="single_head"),
        # (not callbacks/ema=on: it reads its update count each step, from a tensor it keeps on
        # the CPU, which a CPU run cannot tell from a device tensor; the GPU test covers it)
        pytest.param(["head=multi", "mix=vertical_cutmix"], id="multi_head_mixed"),
    ],
)
def test_a_training_step_copies_nothing_to_the_host(
    train_config: Callable[..., DictConfig], monkeypatch: pytest.MonkeyPatch, extra: list[str]
) -> None:
    short = host_copies_of_a_run(train_config, monkeypatch, 10, *extra)
    long = host_copies_of_a_run(train_config, monkeypatch, 30, *extra)
    per_step = {name: (long[name] - short[name]) / 20 for name in HOST_COPIES}
    # 20 more steps hold 2 more log steps, where the non-finite check reads one flag
    assert long["__bool__"] - short["__bool__"] <= 20 // LOG_EVERY, per_step
    assert all(long[name] == short[name] for name in HOST_COPIES if name != "__bool__"), per_step


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_on_a_gpu_no_step_synchronises(
    train_config: Callable[..., DictConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Synchronising calls raise while the training steps run (not at set-up or epoch ends)."""

    class SyncsAreErrors(pl.Callback):
        def on_train_batch_start(self, *args) -> None:
            torch.cuda.set_sync_debug_mode("error")

        def on_train_batch_end(self, *args) -> None:  # after the other callbacks' (added last)
            torch.cuda.set_sync_debug_mode("default")

    def with_sync_errors(run_dir: Path) -> list[pl.Callback]:
        return [*run_callbacks(run_dir), SyncsAreErrors()]

    monkeypatch.setattr("mask_age_gender.training.build.run_callbacks", with_sync_errors)
    cfg = train_config(
        "trainer=gpu", "trainer.max_epochs=1", "+trainer.limit_train_batches=8",
        "head=multi", "mix=vertical_cutmix", "callbacks/ema=on",
    )  # fmt: skip
    try:
        train(cfg)
    finally:
        torch.cuda.set_sync_debug_mode("default")
