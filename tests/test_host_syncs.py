"""No host sync per training step (issue #18): on a GPU each one makes the CPU wait for the GPU,
which then idles while the next step is launched.

On the CPU nothing waits, so the test counts the calls that would, over a whole tiny run of 10
and of 30 training steps: what the run does once (set-up, epoch ends, predictions) cancels out;
what it does per step shows in the difference. Two counts: the tensor methods that copy a value
to the host (``item``, ``tolist``, ``cpu``, ``numpy``, ``bool``, ``int``, ``float``), patched to
count, and, under a ``TorchDispatchMode``, the aten ops that make a CUDA device wait for the host
to read a value, wherever they are called from (C++ included: ``unique``, ``nonzero``, boolean
indexing). On a GPU, ``torch.cuda.set_sync_debug_mode`` makes every synchronising call an error
instead.
"""

from __future__ import annotations

import traceback
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from torch.utils._python_dispatch import TorchDispatchMode

from mask_age_gender.config import CONF
from mask_age_gender.labels import NUM_CLASSES, TASKS
from mask_age_gender.models.metrics import TaskMetrics
from mask_age_gender.train import train

from .conftest import add_run_callback

HOST_COPIES = ("item", "tolist", "cpu", "numpy", "__bool__", "__int__", "__float__")
LOG_EVERY = 10  # trainer.log_every_n_steps: the non-finite loss check reads the device then
aten = torch.ops.aten
# aten ops that make the host wait for a CUDA device: a value read (item, bool, …), or an output
# whose shape depends on the data
SYNC_OPS = {
    aten._local_scalar_dense,  # item(), bool(), int(), float(), tolist() of a one-element tensor
    aten.is_nonzero,
    aten.nonzero,
    aten._unique,
    aten._unique2,
    aten.unique_dim,
    aten.unique_consecutive,
    aten.unique_dim_consecutive,
    aten.masked_select,
    aten.bincount,  # reads the input's min and max (cuda/SummaryOps.cu)
}
BOOL_INDEXED = {aten.index, aten.index_put, aten.index_put_, aten._index_put_impl_}  # x[mask]
SIZED_BY_DATA = {aten.repeat_interleave}  # with a tensor of repeats and no output_size
MIX_OPTIONS = sorted(path.stem for path in (CONF / "mix").glob("*.yaml"))


def synchronising(func: Any, args: tuple, kwargs: dict) -> str | None:
    """The name of ``func`` if it would make the host wait for a CUDA device, else None."""
    op = func.overloadpacket
    if op in SYNC_OPS:
        return str(op)
    if op in BOOL_INDEXED:
        indices = args[1] if len(args) > 1 else kwargs.get("indices", ())
        if any(i is not None and i.dtype in (torch.bool, torch.uint8) for i in indices):
            return f"{op} (boolean index)"
    if op in SIZED_BY_DATA and func._overloadname != "self_int":
        if kwargs.get("output_size") is None:
            return f"{op} (no output_size)"
    return None


class SyncOps(TorchDispatchMode):
    """Counts the synchronising aten ops, and the code that called each."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter = Counter()
        self.callers: defaultdict[str, Counter] = defaultdict(Counter)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = synchronising(func, args, kwargs)
        if name is not None:
            self.calls[name] += 1
            self.callers[name][caller()] += 1
        return func(*args, **kwargs)


def caller() -> str:
    """The innermost frame outside torch (the code that asked for the op) and, when that is a
    library's, the innermost of this package that led there."""
    frames = traceback.extract_stack()[:-3]
    outside = [f for f in frames if "/torch/" not in f.filename and f.filename != __file__]
    ours = [f for f in outside if "/mask_age_gender/" in f.filename]
    named = [f"{f.filename}:{f.lineno} ({f.name})" for f in (outside[-1:] + ours[-1:])]
    return " via ".join(dict.fromkeys(named)) or "?"


def count_host_copies(monkeypatch: pytest.MonkeyPatch) -> Counter:
    calls: Counter = Counter()
    for name in HOST_COPIES:
        original = getattr(torch.Tensor, name)

        def counted(self: torch.Tensor, *args, _name: str = name, _f: Callable = original, **kw):
            calls[_name] += 1
            return _f(self, *args, **kw)

        monkeypatch.setattr(torch.Tensor, name, counted)
    return calls


def syncs_of_a_run(
    train_config: Callable[..., DictConfig], monkeypatch: pytest.MonkeyPatch, steps: int, *extra
) -> tuple[Counter, SyncOps]:
    cfg = train_config(
        "data.batch_size=4",
        "trainer.max_epochs=1",
        f"+trainer.limit_train_batches={steps}",
        f"trainer.log_every_n_steps={LOG_EVERY}",
        "callbacks.progress_bar={_target_:mask_age_gender.training.progress.progress_bar,style:lines}",
        *extra,
    )
    cfg.paths.output_dir = str(Path(cfg.paths.output_dir) / str(steps))
    with monkeypatch.context() as patch, SyncOps() as ops:
        calls = count_host_copies(patch)
        train(cfg)
    return calls, ops


def per_step_ops(
    train_config: Callable[..., DictConfig], monkeypatch: pytest.MonkeyPatch, *extra: str
) -> tuple[Counter, dict[str, float], dict[str, int], str]:
    """The host copies (long run minus short), their per-step rate, and the synchronising aten
    ops (long minus short) with the callers of the added ones."""
    short, short_ops = syncs_of_a_run(train_config, monkeypatch, 10, *extra)
    long, long_ops = syncs_of_a_run(train_config, monkeypatch, 30, *extra)
    copies = Counter({name: long[name] - short[name] for name in HOST_COPIES})
    per_step = {name: copies[name] / 20 for name in HOST_COPIES}
    ops = {op: long_ops.calls[op] - short_ops.calls[op] for op in long_ops.calls}
    where = "\n".join(
        f"{op} +{n} over 20 steps, from {dict(long_ops.callers[op] - short_ops.callers[op])}"
        for op, n in ops.items()
        if n > 0
    )
    return copies, per_step, ops, where


@pytest.mark.slow
@pytest.mark.parametrize(
    "extra",
    [
        *(pytest.param([f"mix={mix}"], id=f"mix={mix}") for mix in MIX_OPTIONS),
        # (not callbacks/ema=on: it reads its update count each step, from a tensor it keeps on
        # the CPU, which a CPU run cannot tell from a device tensor; the GPU test covers it)
        pytest.param(["head=multi", "mix=vertical_cutmix"], id="head=multi,mix=vertical_cutmix"),
    ],
)
def test_a_training_step_synchronises_nothing(
    train_config: Callable[..., DictConfig], monkeypatch: pytest.MonkeyPatch, extra: list[str]
) -> None:
    copies, per_step, ops, where = per_step_ops(train_config, monkeypatch, *extra)
    # 20 more steps hold 2 more log steps, where the non-finite check reads one flag
    reads = 20 // LOG_EVERY
    assert copies["__bool__"] <= reads, per_step
    assert all(copies[name] == 0 for name in HOST_COPIES if name != "__bool__"), per_step
    assert ops.get(str(aten._local_scalar_dense), 0) <= reads, where  # that same read
    others = {op: n for op, n in ops.items() if op != str(aten._local_scalar_dense)}
    assert all(n <= 0 for n in others.values()), where


def test_metrics_of_a_training_step_synchronise_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The training step's metrics alone (issue #24: the F1s of torchmetrics counted with
    ``torch.bincount``, 4 calls a step, 2 host reads a call)."""
    metrics = TaskMetrics(persistent=True, loss_tasks=TASKS)
    preds, target = torch.randint(0, NUM_CLASSES, (2, 8))
    loss = torch.tensor(1.0)
    with monkeypatch.context() as patch, SyncOps() as ops:
        copies = count_host_copies(patch)
        for _ in range(3):
            metrics.update(preds, target, loss, dict.fromkeys(TASKS, loss))
    assert not ops.calls, dict(ops.callers)
    assert not +copies, copies


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

    add_run_callback(monkeypatch, SyncsAreErrors())
    cfg = train_config(
        "trainer=gpu", "trainer.max_epochs=1", "+trainer.limit_train_batches=8",
        "head=multi", "mix=vertical_cutmix", "callbacks/ema=on",
    )  # fmt: skip
    try:
        train(cfg)
    finally:
        torch.cuda.set_sync_debug_mode("default")
