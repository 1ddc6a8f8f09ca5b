"""The analysis reaches every logger: the tiny sweep's run that logs to TensorBoard and W&B
(offline) at once, read back through TensorBoard's own reader and from the offline W&B run
folder."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2
from wandb.proto import wandb_internal_pb2

from mask_age_gender.results.run_report import FIGURES

from .conftest import compose_config
from .tiny_runs import LOGGED, LOGGERS, tiny_sweep

SCORES = ("val_f1", "val_f1_ci_low", "val_f1_ci_high", "val_f1_mask", "val_loss", "best_epoch")
SCORES += ("val_cam_face_share",)
FIGURE_TAGS = {f"analysis/{Path(name).stem}" for name in FIGURES}


@pytest.fixture(scope="module")
def run(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run with the error analysis, logged to TensorBoard and W&B (offline)."""
    return tiny_sweep(archive, tmp_path_factory) / LOGGED


def test_two_logger_options_compose_with_the_csv_one(archive: Path, tmp_path: Path) -> None:
    cfg = compose_config([f"data.root={archive}", LOGGERS], tmp_path / "run")
    assert set(cfg.logger) == {"csv", "tensorboard", "wandb"}


@pytest.mark.slow
def test_the_csv_logger_and_the_summary_stay_beside_the_others(run: Path) -> None:
    assert (run / "metrics.csv").is_file() and (run / "summary.json").is_file()
    assert list(run.glob("tensorboard/events.out.tfevents.*"))
    assert list(run.glob("wandb/offline-run-*"))


@pytest.mark.slow
def test_tensorboard_gets_the_figures_hparams_with_scores_and_the_report(run: Path) -> None:
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0, "tensors": 0})
    events.Reload()
    assert set(events.Tags()["images"]) == FIGURE_TAGS
    image = events.Images("analysis/confusion")[-1]
    assert image.width > 100 and image.encoded_image_string.startswith(b"\x89PNG")
    summary = json.loads((run / "summary.json").read_text())
    assert events.Scalars("val_f1")[-1].value == pytest.approx(summary["val_f1"])
    hparams = events.PluginTagToContent("hparams")
    experiment = plugin_data_pb2.HParamsPluginData.FromString(hparams["_hparams_/experiment"])
    assert set(SCORES) <= {info.name.tag for info in experiment.experiment.metric_infos}
    start = plugin_data_pb2.HParamsPluginData.FromString(hparams["_hparams_/session_start_info"])
    assert start.session_start_info.hparams["config/optimizer/lr"].number_value == 0.001
    report = events.Tensors("analysis/report/text_summary")[-1].tensor_proto.string_val[0]
    assert report.decode() == (run / "report.md").read_text()


def wandb_records(log: Path) -> Iterator[wandb_internal_pb2.Record]:
    """The records of an offline run's ``run-<id>.wandb`` (LevelDB log format: 32 KiB blocks of
    chunks, each with a 7-byte header: crc32, length, type 1 full | 2 first | 3 middle | 4 last;
    the file opens with a 7-byte ``:W&B`` header). wandb 0.31 has no Python reader of its own."""
    data, block, pos, chunks = log.read_bytes(), 32768, 7, b""
    while pos + 7 <= len(data):
        room = block - pos % block
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if room < 7 or kind == 0:  # the block's zero padding
            pos += room
            continue
        chunks += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunks)
            chunks = b""
            yield record


def wandb_summary(log: Path) -> dict[str, object]:
    """The run summary as ``wandb sync`` would upload it: every summary update, in order."""
    summary: dict[str, object] = {}
    for record in wandb_records(log):
        if record.WhichOneof("record_type") == "summary":
            for item in record.summary.update:
                key = item.key or "/".join(item.nested_key)
                summary[key] = json.loads(item.value_json)
    return summary


@pytest.mark.slow
def test_wandb_offline_run_holds_scores_figures_table_and_report(run: Path) -> None:
    (folder,) = (run / "wandb").glob("offline-run-*")
    files = folder / "files"
    summary = json.loads((run / "summary.json").read_text())
    records = list(wandb_records(next(folder.glob("run-*.wandb"))))
    assert records and records[-1].WhichOneof("record_type") == "exit"  # finished
    logged = wandb_summary(next(folder.glob("run-*.wandb")))
    assert {key: logged[key] for key in SCORES} == {key: summary[key] for key in SCORES}
    images = {p.name.rsplit("_", 2)[0] for p in (files / "media" / "images").rglob("*.png")}
    assert images == {Path(name).stem for name in FIGURES}
    (table,) = (files / "media" / "table").rglob("per_class*.table.json")
    assert len(json.loads(table.read_text())["data"]) == 18
    report = files / "report.md"
    assert not report.is_symlink() and report.read_text() == (run / "report.md").read_text()
