"""Per-head losses (#11): a multi-head run logs each head's unweighted loss per epoch, which the
head weights sum to the loss; a single-head run logs none; DDP processes share them; the
curves figure draws them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F
from omegaconf import DictConfig

from mask_age_gender.models.heads import MultiHead
from mask_age_gender.models.losses import HeadLoss
from mask_age_gender.models.metrics import TaskMetrics
from mask_age_gender.results.error_analysis import analyse_run
from mask_age_gender.results.plots import curves_figure
from mask_age_gender.results.run_reader import epoch_history
from mask_age_gender.train import train

from .conftest import TINY, compose_config
from .ddp_ranks import TASKS, free_port, head_losses
from .tiny_runs import tiny_sweep

HEAD_COLUMNS = [f"{stage}/loss_{task}" for stage in ("train", "val") for task in TASKS]
WEIGHTS = {"mask": 1.0, "gender": 0.5, "age": 2.0}  # not all 1: the sum must weigh the heads


def test_task_losses_are_unweighted_and_combine_to_the_loss() -> None:
    torch.manual_seed(0)
    head = MultiHead(8)
    logits, targets = head(torch.randn(10, 8)), head.targets(torch.randint(0, 18, (10,)))
    loss = HeadLoss(head.tasks, torch.nn.CrossEntropyLoss, head_weights=list(WEIGHTS.values()))
    parts = loss.task_losses(logits, targets)
    for task in TASKS:
        assert parts[task].item() == pytest.approx(
            F.cross_entropy(logits[task], targets[task]).item()
        )
    combined = sum(WEIGHTS[t] * parts[t] for t in TASKS)
    assert loss.combine(parts).item() == pytest.approx(combined.item(), rel=1e-6)
    assert loss(logits, targets).item() == pytest.approx(combined.item(), rel=1e-6)


@pytest.fixture(scope="module")
def multi_run(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two epochs of the multi head with unequal head weights."""
    run_dir = tmp_path_factory.mktemp("head_losses") / "run"
    weights = ",".join(str(w) for w in WEIGHTS.values())
    cfg: DictConfig = compose_config(
        [*TINY, f"data.root={archive}", "head=multi", f"loss.head_weights=[{weights}]"], run_dir
    )
    train(cfg)
    return run_dir


@pytest.mark.slow
def test_a_multi_head_run_logs_each_head_summing_to_the_loss(multi_run: Path) -> None:
    header = (multi_run / "metrics.csv").read_text().splitlines()[0]
    print(f"metrics.csv header (head=multi): {header}")
    assert set(HEAD_COLUMNS) <= set(header.split(","))
    history = epoch_history(multi_run / "metrics.csv")
    assert len(history) == 2
    for stage in ("train", "val"):
        heads = history[[f"{stage}/loss_{task}" for task in TASKS]]
        assert heads.notna().all().all() and (heads > 0).all().all()
        weighted = sum(WEIGHTS[task] * history[f"{stage}/loss_{task}"] for task in TASKS)
        assert (weighted - history[f"{stage}/loss"]).abs().max() < 1e-5, (stage, history)


@pytest.mark.slow
def test_a_single_head_run_logs_no_head_losses(
    archive: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    run_dir = tiny_sweep(archive, tmp_path_factory) / "head=single"
    columns = (run_dir / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train/loss", "val/loss"} <= set(columns)
    assert not [c for c in columns if "/loss_" in c]


def loss_lines(run_dir: Path) -> dict[str, list[float]]:
    """The curves figure's loss panel: each labelled line's y values."""
    loss_axes = curves_figure(analyse_run(run_dir)).axes[0]
    assert loss_axes.get_title() == "loss per epoch"
    return {line.get_label(): list(line.get_ydata()) for line in loss_axes.get_lines()}


@pytest.mark.slow
def test_the_curves_figure_draws_each_head_when_logged(
    multi_run: Path, archive: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    lines = loss_lines(multi_run)
    history = epoch_history(multi_run / "metrics.csv")
    heads = {
        f"{stage} {task} (unweighted)": f"{stage}/loss_{task}"
        for stage, task in ((s, t) for s in ("train", "val") for t in TASKS)
    }
    assert len(lines) == 2 + len(heads) + 1  # train, val, the heads, the best epoch
    for label, column in heads.items():
        assert lines[label] == pytest.approx(history[column].tolist())
    single = loss_lines(tiny_sweep(archive, tmp_path_factory) / "head=single")
    assert len(single) == 3 and not any("unweighted" in label for label in single)


@pytest.mark.slow  # two fresh processes (ddp_ranks.py says why not forked)
def test_ddp_processes_share_the_head_losses(tmp_path: Path) -> None:
    mp.start_processes(head_losses, args=(free_port(), tmp_path), nprocs=2, start_method="spawn")
    for rank in (0, 1):
        scores = torch.load(tmp_path / f"rank{rank}.pt")
        assert scores["loss"] == pytest.approx((3 * 10.0 + 1 * 20.0) / 4)
        for i, task in enumerate(TASKS):  # 3 photos at 1 + i, 1 photo at 2 + i
            assert scores[f"loss_{task}"] == pytest.approx((3 * (1 + i) + (2 + i)) / 4), rank


def test_an_epoch_resumed_midway_averages_the_head_losses_of_all_its_batches() -> None:
    def update(metrics: TaskMetrics, photos: int, value: float) -> None:
        labels, loss = torch.zeros(photos, dtype=torch.long), torch.tensor(value)
        metrics.update(labels, labels, loss, dict.fromkeys(TASKS, loss))

    before = TaskMetrics(persistent=True, loss_tasks=TASKS)
    update(before, 3, 1.0)
    resumed = TaskMetrics(persistent=True, loss_tasks=TASKS)  # from the checkpoint
    resumed.load_state_dict(before.state_dict())
    update(resumed, 1, 5.0)
    scores = resumed.compute()
    for name in ("loss", *(f"loss_{task}" for task in TASKS)):
        assert scores[name] == pytest.approx((3 * 1.0 + 1 * 5.0) / 4), name
