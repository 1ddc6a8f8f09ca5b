"""Where the network looks (results/attention.py): the face share on hand-made maps, Grad-CAM
finding a corner square that decides the class, boxes carried through the crop, and a run's
maps in its folder, summary, ledger and TensorBoard."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import timm
import torch
from PIL import Image
from scipy import ndimage
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

from mask_age_gender.data.faces.boxes import TRUE_BOXES_FILE
from mask_age_gender.data.transforms import build_transform
from mask_age_gender.models.heads import MultiHead
from mask_age_gender.results import attention
from mask_age_gender.results.attention import (
    CamUnsupported,
    cam_layer,
    class_maps,
    face_share,
    mask_box,
)
from mask_age_gender.results.attention_plots import FIGURES
from mask_age_gender.results.ledger import collect_ledger
from mask_age_gender.results.run_report import write_error_analysis
from mask_age_gender.train import train

from .conftest import CONF, TINY, compose_config
from .tiny_runs import FINISHED, LOGGED, tiny_sweep

SIDE, SQUARE = 64, 16  # photo side, side of the square that decides the class


def test_the_share_is_one_inside_the_box_and_zero_outside() -> None:
    box = np.zeros((8, 8))
    box[2:5, 3:7] = 1
    inside, outside, half = np.zeros((3, 8, 8)), np.zeros((3, 8, 8)), np.zeros((3, 8, 8))
    inside[:, 3, 4], inside[:, 2:5, 3:7] = 5.0, 1.0
    outside[:, 6:, :2] = 2.0
    half[:, 2, 3], half[:, 7, 7] = 1.0, 1.0
    assert face_share(inside, np.broadcast_to(box, inside.shape)).tolist() == [1.0] * 3
    assert face_share(outside, np.broadcast_to(box, outside.shape)).tolist() == [0.0] * 3
    assert face_share(half, np.broadcast_to(box, half.shape)).tolist() == [0.5] * 3
    empty = face_share(np.stack([np.zeros((8, 8)), inside[0]]), np.stack([box, np.zeros((8, 8))]))
    assert np.isnan(empty).all()  # an empty map, an empty box: no share


def squares(count: int, corner: tuple[int, int], generator: torch.Generator):
    """Noise photos whose class (0 red, 1 green) is the colour of a square in one corner."""
    images = torch.rand(count, 3, SIDE, SIDE, generator=generator) * 0.6
    labels = torch.randint(0, 2, (count,), generator=generator)
    rows, columns = slice(corner[0], corner[0] + SQUARE), slice(corner[1], corner[1] + SQUARE)
    images[:, :, rows, columns] = 0.0
    images[labels == 0, 0, rows, columns] = 1.0
    images[labels == 1, 1, rows, columns] = 1.0
    return images, labels


def top_left_share(corner: tuple[int, int]) -> tuple[float, float]:
    """Accuracy and mean top-left-quadrant share of the maps of a tiny ResNet trained on
    squares in ``corner``."""
    generator = torch.Generator().manual_seed(1)
    torch.manual_seed(0)
    model = timm.create_model("test_resnet", num_classes=2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(40):  # accuracy 1.0 after 30 on this CPU
        images, labels = squares(32, corner, generator)
        loss = nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    images, labels = squares(64, corner, generator)
    accuracy = (model(images).argmax(dim=1) == labels).float().mean().item()
    maps = class_maps(model, cam_layer(model), images, labels).numpy()
    quadrant = np.zeros((SIDE, SIDE))
    quadrant[: SIDE // 2, : SIDE // 2] = 1
    return accuracy, float(np.nanmean(face_share(maps, np.broadcast_to(quadrant, maps.shape))))


@pytest.mark.slow
def test_grad_cam_finds_the_corner_that_decides_the_class() -> None:
    accuracy, share = top_left_share((0, 0))
    assert accuracy >= 0.95 and share >= 0.6
    accuracy, share = top_left_share((SIDE - SQUARE, SIDE - SQUARE))
    assert accuracy >= 0.95 and share < 0.25  # a uniform map would give 0.25


@pytest.mark.parametrize(
    ("name", "layout"), [("test_vit", "tokens"), ("test_mambaout", "channels-last")]
)
def test_stages_without_a_channels_first_feature_map_are_refused(name: str, layout: str) -> None:
    model = timm.create_model(name, num_classes=2).eval()  # each at its own 160×160
    with pytest.raises(CamUnsupported, match=layout):
        class_maps(model, cam_layer(model), torch.rand(2, 3, 160, 160), torch.tensor([0, 1]))


def test_three_heads_score_classes_as_their_probabilities_rank_them() -> None:
    head = MultiHead(in_features=5)
    logits = head(torch.randn(4, 5))
    scores = head.class_scores(logits)
    assert scores.shape == (4, 18)
    torch.testing.assert_close(scores.softmax(dim=-1), head.probabilities(logits))


@pytest.mark.parametrize("transform", ["center_crop", "face_crop"])
def test_the_face_box_goes_through_the_crop_and_resize(transform: str) -> None:
    recipe = compose_config([f"transform={transform}"], Path("unused"))["transform"]
    pipeline = build_transform(recipe, (70, 50), [0.0] * 3, [1.0] * 3, False, "loader")
    photo = np.zeros((512, 384, 3), dtype=np.uint8)
    x1, y1, x2, y2 = 150, 200, 250, 330  # a face box in the photo
    photo[y1:y2, x1:x2] = 255
    mask = np.zeros(photo.shape[:2], dtype=np.uint8)
    mask[y1:y2, x1:x2] = 1
    face = (x1, y1, x2, y2) if transform == "face_crop" else None
    image, moved = pipeline.prepare_with_mask(photo, face, mask)
    assert moved.shape == image.shape[:2] == (70, 50)
    white = image[..., 0] > 127
    assert (moved.astype(bool) == white).mean() > 0.97  # the box marks the face it drew
    view = mask_box(moved)
    if transform == "center_crop":  # 250 × 350 from the middle of 384 × 512, then a fifth
        left, top = (384 - 250) // 2, (512 - 350) // 2
        expected = [(x1 - left) / 5, (y1 - top) / 5, (x2 - left) / 5, (y2 - top) / 5]
        assert view == pytest.approx(expected, abs=1)
    if transform == "face_crop":  # the box grown by a quarter of its larger side on each side
        grown = (x2 - x1 + 65, y2 - y1 + 65)  # 165 × 195, then heightened to 50:70
        window = grown[0] * grown[0] * 70 / 50
        assert moved.mean() == pytest.approx((x2 - x1) * (y2 - y1) / window, abs=0.02)


@pytest.fixture(scope="module")
def sweep(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_sweep(archive, tmp_path_factory)


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).astype(int)


def check_attention_png(path: Path, predictions: pd.DataFrame) -> None:
    """attention.png as attention_plots.attention_figure draws it, saved at 100 dpi: 2.2 in a
    panel × 2 panels × 3 classes wide = 13.2 in → 1320 px; 2.6 in × (18/3 = 6 rows of classes +
    1.3 for the mistakes) = 18.98 in → 1898 px. A photo panel is the only large blob of ink
    (its frame filled in); one per class and verdict the predictions have (right, wrong), and
    one per mistake up to 6. Each holds the face box: a rectangle outline of white pixels."""
    image = pixels(path)
    assert image.shape == (1898, 1320, 3)
    correct = predictions["true"] == predictions["pred"]
    expected = len(set(zip(predictions["true"], correct, strict=True))) + min(6, (~correct).sum())
    blobs, _ = ndimage.label(ndimage.binary_fill_holes((image < 230).any(axis=2)))
    panels = [
        window
        for window in ndimage.find_objects(blobs)
        if (window[0].stop - window[0].start) * (window[1].stop - window[1].start) > 10_000
    ]
    assert len(panels) == expected  # measured 18: 12 of a class and verdict, 6 mistakes
    for window in panels:
        white = (image[window][3:-3, 3:-3] >= 250).all(axis=2)  # inside the panel's frame
        assert white.any(), window
        rows, columns = np.nonzero(white)
        top, bottom, left, right = rows.min(), rows.max(), columns.min(), columns.max()
        edge = (np.minimum(rows - top, bottom - rows) <= 2) | (
            np.minimum(columns - left, right - columns) <= 2
        )
        perimeter = 2 * (bottom - top + right - left)
        assert edge.mean() > 0.9 and white.sum() >= 0.8 * perimeter, window  # an outline
        assert bottom - top >= 20 and right - left >= 20, window  # measured 64-120 px a side


def check_share_png(path: Path) -> None:
    """cam_face_share.png: 8 × 3.6 in at 100 dpi, the three mask states' histograms in
    matplotlib's first three colours, the box area's dashed grey line and the black mean."""
    image = pixels(path)
    assert image.shape == (360, 800, 3)
    for colour in ("#1f77b4", "#ff7f0e", "#2ca02c", "#808080", "#000000"):
        rgb = [int(colour[k : k + 2], 16) for k in (1, 3, 5)]
        assert (image == rgb).all(axis=2).sum() >= 50, colour  # measured 266 and up


@pytest.mark.slow
def test_a_run_writes_its_maps_and_face_share(sweep: Path) -> None:
    ledger = collect_ledger([sweep]).set_index("run")
    for name in FINISHED:  # one head and three heads
        run = sweep / name
        summary = json.loads((run / "summary.json").read_text())
        table = pd.read_csv(run / "attention.csv")
        predictions = pd.read_csv(run / "val_predictions.csv")
        assert table["path"].tolist() == predictions["path"].tolist()
        assert table["face_share"].between(0, 1).all()  # the synthetic archive's true boxes
        assert summary["val_cam_face_share"] == pytest.approx(table["face_share"].mean(), abs=1e-6)
        assert summary["val_cam_layer"] == "backbone.layer4"
        assert summary["val_cam_boxes"].endswith("face_boxes_true.csv")
        assert summary["val_cam_photos"] == len(predictions)
        assert summary["val_cam_seconds_per_1000"] > 0
        assert ledger.loc[name, "val_cam_face_share"] == summary["val_cam_face_share"]
        assert "## Where the network looks" in (run / "report.md").read_text()
        assert set(FIGURES) == {"attention.png", "cam_face_share.png"}
        check_attention_png(run / "attention.png", predictions)
        check_share_png(run / "cam_face_share.png")


@pytest.mark.slow
def test_the_maps_reach_tensorboard(sweep: Path) -> None:
    run = sweep / LOGGED
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    logged = events.Images("analysis/attention")[-1].encoded_image_string
    with Image.open(io.BytesIO(logged)) as image, Image.open(run / "attention.png") as saved:
        assert np.array_equal(np.asarray(image.convert("RGB")), np.asarray(saved.convert("RGB")))
    summary = json.loads((run / "summary.json").read_text())
    score = events.Scalars("val_cam_face_share")[-1].value
    assert score == pytest.approx(summary["val_cam_face_share"])


@pytest.mark.slow
def test_error_analysis_false_makes_no_maps(archive: Path, tmp_path: Path) -> None:
    overrides = [f"data.root={archive}", "trainer.max_epochs=1", "+trainer.limit_train_batches=1"]
    train(compose_config([*TINY, *overrides], tmp_path / "run"))  # TINY: error_analysis=false
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert "val_cam_face_share" not in summary
    assert not (tmp_path / "run" / "attention.csv").exists()


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONF / "transform").glob("*.yaml")))
def test_every_prepare_step_moves_a_mask_with_its_image(name: str) -> None:
    """The face share needs the box carried through each transform option's ``prepare``."""
    recipe = compose_config([f"transform={name}"], Path("unused"))["transform"]
    pipeline = build_transform(recipe, (64, 48), [0.0] * 3, [1.0] * 3, False, "loader")
    photo = np.zeros((512, 384, 3), dtype=np.uint8)
    photo[180:360, 120:260] = 255
    mask = (photo[..., 0] > 0).astype(np.uint8)
    image, moved = pipeline.prepare_with_mask(photo, (120, 180, 260, 360), mask)
    box, face = moved.astype(bool), image[..., 0] > 127  # edges blur in the resize
    assert (box & face).sum() / (box | face).sum() > 0.85


@pytest.mark.slow
def test_a_broken_boxes_file_leaves_the_run_finished_and_says_why(
    sweep: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = Path(shutil.copytree(sweep / next(iter(FINISHED)), tmp_path / "run"))
    broken = tmp_path / "face_boxes.csv"
    broken.write_text("path,x1,y1,x2,y2,score,found\nnot/a/photo.jpg,1,2,3,4,90,true\n")
    monkeypatch.setattr(attention, "boxes_source", lambda config: broken)
    errors = write_error_analysis(run)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["val_cam_face_share"] is None
    assert str(broken) in summary["val_cam_note"] and "not/a/photo.jpg" in summary["val_cam_note"]
    assert errors["attention"] == {key: summary[key] for key in errors["attention"]}
    assert f"No face share: face boxes file {broken}" in (run / "report.md").read_text()
    assert not any(key.startswith("val_cam_face_share_") for key in summary)  # none stale


@pytest.mark.slow
def test_an_unexpected_error_of_the_maps_is_not_hidden_in_a_note(
    sweep: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = Path(shutil.copytree(sweep / next(iter(FINISHED)), tmp_path / "run"))

    def bug(*args: object) -> None:
        raise ZeroDivisionError("a bug in the maps")

    monkeypatch.setattr(attention, "class_maps", bug)
    with pytest.raises(ZeroDivisionError, match="a bug in the maps"):
        write_error_analysis(run)


def test_the_maps_take_the_boxes_the_run_would_crop_to(archive: Path, tmp_path: Path) -> None:
    """The one rule of ``faces.resolve.boxes_file``: data.face_boxes, else the detector's file in
    data.cache_dir; never the synthetic archive's true boxes on their own (old rule)."""
    data = {"root": str(archive), "face_boxes": None, "cache_dir": str(tmp_path)}
    assert attention.boxes_source({"data": data}) is None  # no file yet: no share, a note
    detected = tmp_path / "face_boxes.csv"
    detected.write_text("path,x1,y1,x2,y2,score,found\n")
    assert attention.boxes_source({"data": data}) == detected
    given = {**data, "face_boxes": str(archive / TRUE_BOXES_FILE)}
    assert attention.boxes_source({"data": given}) == archive / TRUE_BOXES_FILE
