"""transform=face_crop: the window by hand, the centre-crop fallback, cache and statistics keys,
and a run that trains, predicts and ensembles on its crops; predict on an archive without boxes
detects them, and refuses boxes it cannot use."""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path

import albumentations as A
import numpy as np
import pandas as pd
import pytest

from mask_age_gender.data.archive import read_eval, read_train
from mask_age_gender.data.datamodule import FaceDataModule
from mask_age_gender.data.dataset import FaceDataset
from mask_age_gender.data.faces.boxes import TRUE_BOXES_FILE
from mask_age_gender.data.faces.crop import FaceCrop, crop_window
from mask_age_gender.data.faces.resolve import FaceBoxesMissing
from mask_age_gender.data.photos import load_rgb
from mask_age_gender.data.stats import stats_key
from mask_age_gender.data.transforms import build_transform
from mask_age_gender.inference.checkpoints import load_classifier
from mask_age_gender.inference.prediction import predict_archive
from mask_age_gender.inference.proba import eval_loader
from mask_age_gender.resolvers import CACHE_ENV, archive_cache
from mask_age_gender.results.error_analysis import analyse_run
from mask_age_gender.results.plots import face_crop_figure, network_view
from mask_age_gender.train import train

from .conftest import TINY, compose_config

PHOTO = np.arange(64 * 48 * 3, dtype=np.uint32).reshape(64, 48, 3).astype(np.uint8)  # H×W
CENTRE = {"_target_": "albumentations.CenterCrop", "height": 350, "width": 250}


def face_crop(margin: float = 0.25, aspect=(64, 48), **fallback) -> dict:
    """conf/transform/face_crop.yaml's step, as a recipe."""
    step = {"_target_": "mask_age_gender.data.faces.crop.FaceCrop", "margin": margin}
    return {"prepare": {"face_crop": {**step, "aspect": list(aspect), **fallback}}}


def crop(image: np.ndarray, box, margin: float, aspect) -> np.ndarray:
    return A.Compose([FaceCrop(margin, aspect)])(image=image, face_box=box)["image"]


@pytest.mark.parametrize(
    ("box", "margin", "aspect", "rows", "columns"),
    [
        # In the middle, heightened: 20×28 box, +7 a side (0.25 × 28) → x 3..37, y 5..47
        # (34×42); at W/H = 48/64 = 0.75, 42 high needs only 31.5 wide, so the height grows to
        # 34/0.75 = 45.33: +1.67 a side, y 3.33..48.67 → rows 3..49
        ((10, 12, 30, 40), 0.25, (64, 48), (3, 49), (3, 37)),
        # In the middle, widened: 12×24 box, +6 a side (0.25 × 24) → x 12..36, y 10..46
        # (24×36); 36 high needs 36 × 0.75 = 27 wide: +1.5 a side, x 10.5..37.5 → columns 10..38
        ((18, 16, 30, 40), 0.25, (64, 48), (10, 46), (10, 38)),
        # At the top-left corner, heightened and clipped: 24×16 box, +6 a side → x -4..32,
        # y -5..23 (36×28); 36 wide needs 36/0.75 = 48 high: +10 a side, y -15..33; clipped at 0
        ((2, 1, 26, 17), 0.25, (64, 48), (0, 33), (0, 32)),
        # At the bottom-right corner, widened and clipped: 8×16 box, +4 a side → x 34..50,
        # y 40..64 (16×24); 24 high needs 18 wide: +1 a side, x 33..51; clipped to x ≤ 48
        ((38, 44, 46, 60), 0.25, (64, 48), (40, 64), (33, 48)),
        # 16×22 box: +11 a side → x 19..57, y 29..73 (38×44); square: x 16..60, clipped 16..48,
        # y clipped 29..64
        ((30, 40, 46, 62), 0.5, (1, 1), (29, 64), (16, 48)),
        # no margin, 15×19.5: square → x 3.25..22.75; the outer pixels of x and y 10.7..30.2
        # (floor, ceil; rounding would give x 3..23 but y 11..30)
        ((5.5, 10.7, 20.5, 30.2), 0.0, (1, 1), (10, 31), (3, 23)),
    ],
)
def test_the_crop_of_a_known_box_is_the_hand_computed_slice(
    box, margin, aspect, rows, columns
) -> None:
    expected = PHOTO[rows[0] : rows[1], columns[0] : columns[1]]
    assert crop_window(box, margin, aspect, PHOTO.shape) == (
        columns[0],
        rows[0],
        *columns[1:],
        rows[1],
    )
    assert np.array_equal(crop(PHOTO, box, margin, aspect), expected)


def test_without_a_face_the_step_is_transform_center_crop() -> None:
    """The fallback is the 350×250 centre crop, padded on a smaller photo, as center_crop's."""
    big = np.random.default_rng(0).integers(0, 256, (512, 384, 3), dtype=np.uint8)
    for image in (PHOTO, big):
        centre = build_transform(
            {"prepare": {"c": {**CENTRE, "pad_if_needed": True}}},
            (64, 48),
            [0] * 3,
            [1] * 3,
            False,
            "loader",
        )
        faces = build_transform(face_crop(), (64, 48), [0] * 3, [1] * 3, False, "loader")
        no_face = (np.nan,) * 4
        assert np.array_equal(faces.prepare_image(image, no_face), centre.prepare_image(image))
    assert crop(big, no_face, 0.25, (64, 48)).shape == (350, 250, 3)
    with pytest.raises(ValueError, match="face_box"):  # never silently uncropped
        faces.prepare_image(PHOTO)


def test_the_cache_and_statistics_keys_change_with_the_margin_and_the_boxes(
    archive: Path, tmp_path: Path
) -> None:
    keys = [
        build_transform(face_crop(m), (64, 48), [0] * 3, [1] * 3, True, "loader").key
        for m in (0.25, 0.25, 0.4)
    ]
    assert keys[0] == keys[1] != keys[2]
    paths = read_train(archive, verify_images=False)["path"].tolist()[:2]
    boxes = np.array([[10, 12, 30, 40], [np.nan] * 4])
    moved = boxes + [[1, 0, 1, 0], [0, 0, 0, 0]]
    assert stats_key(paths, keys[0], boxes) != stats_key(paths, keys[0], moved)
    assert stats_key(paths, keys[0], boxes) == stats_key(paths[::-1], keys[0], boxes[::-1])
    pipeline = build_transform(face_crop(), (64, 48), [0] * 3, [1] * 3, False, "loader")
    for rows in (boxes, moved):  # one disk file per photo and box
        FaceDataset(paths, None, pipeline, "disk", tmp_path, boxes=rows)[0]
    assert len(list(tmp_path.rglob("*.npy"))) == 2
    with pytest.raises(ValueError, match="boxes"):
        FaceDataset(paths, None, pipeline)


def true_boxes(archive: Path) -> pd.DataFrame:
    return pd.read_csv(archive / TRUE_BOXES_FILE)


def test_the_synthetic_archive_writes_the_true_box_of_every_photo(archive: Path) -> None:
    boxes = true_boxes(archive).set_index("path")
    train = read_train(archive, verify_images=False)
    photos = [str(Path(p).relative_to(archive)) for p in train["path"]]
    photos += [f"eval/images/{i}" for i in read_eval(archive, False)["image_id"]]
    assert sorted(boxes.index) == sorted(photos) and boxes["found"].all()
    # the drawn face: skin-coloured at the box centre, the backdrop well outside it
    row = boxes.loc[photos[0]]
    image = load_rgb(str(archive / photos[0])).astype(int)
    centre = image[int((row.y1 + row.y2) / 2), int((row.x1 + row.x2) / 2)]
    assert 0 <= row.x1 < row.x2 <= 48 and 0 <= row.y1 < row.y2 <= 64
    assert centre[0] > centre[2]  # skin: more red than blue


def test_photos_without_a_face_get_the_centre_crop_and_are_counted(
    archive_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    boxes = true_boxes(archive_copy)
    boxes.loc[[0, 3], "found"] = False  # two photos whose face the detector missed
    boxes.to_csv(archive_copy / "missed.csv", index=False)
    cfg = compose_config(
        [
            *TINY,
            f"data.root={archive_copy}",
            "transform=face_crop",
            f"data.face_boxes={archive_copy / 'missed.csv'}",
        ],
        archive_copy / "r",
    )
    datamodule = FaceDataModule.from_config(cfg.data, cfg.transform, [0.5] * 3, [0.5] * 3)
    datamodule.setup()
    with caplog.at_level(logging.INFO):
        sets = [
            datamodule._dataset(s, t)
            for s, t in (("train", datamodule.train_table), ("val", datamodule.val_table))
        ]
    missed = {str(archive_copy / boxes.at[k, "path"]) for k in (0, 3)}
    centre = A.Compose([A.CenterCrop(350, 250, pad_if_needed=True), A.Resize(64, 48)])
    for dataset in sets:
        for k, path in enumerate(dataset.paths):
            if path in missed:
                assert np.isnan(dataset.boxes[k]).all()
                expected = centre(image=load_rgb(path))["image"]
                assert np.array_equal(dataset.photos(k), expected)
    counted = [r.getMessage() for r in caplog.records if "without a face" in r.getMessage()]
    assert len(counted) == 2  # one line per stage: "face_crop: 2 of 161 train photos …"
    assert sorted(int(line.split()[1]) for line in counted) == [0, 2]  # one person's photos


# Two eval photos of the archive (eval/info.csv rows 0 and 5), their true boxes (x1, y1, x2,
# y2) and the windows worked out by hand from them at face_crop's margin 0.25 and 64×48 (W/H
# 0.75); floor of the start, ceil of the end, nothing clipped from the 48×64 photos.
HAND_WINDOWS = {
    # 21.54×27.00 box, +6.75 a side → x 7.20..42.24, y 6.56..47.06 (35.04×40.50); 35.04 wide
    # needs 35.04/0.75 = 46.72 high: +3.11 a side, y 3.45..50.17 → x 7..43, y 3..51
    0: ((13.95, 13.31, 35.49, 40.31), (7, 3, 43, 51)),
    # 22.14×27.48 box, +6.87 a side → x 4.78..40.66, y 6.51..47.73 (35.88×41.22); 35.88 wide
    # needs 47.84 high: +3.31 a side, y 3.20..51.04 → x 4..41, y 3..52
    5: ((11.65, 13.38, 33.79, 40.86), (4, 3, 41, 52)),
}


def hand_crop(archive: Path, k: int) -> tuple[str, np.ndarray]:
    """Eval photo ``k``'s path, and the photo cut to its hand-computed window and resized to
    64×48, after checking that its true box is the one the window was worked out from."""
    path = read_eval(archive, False)["path"][k]
    box, (x1, y1, x2, y2) = HAND_WINDOWS[k]
    row = true_boxes(archive).set_index("path").loc[str(Path(path).relative_to(archive))]
    assert (row.x1, row.y1, row.x2, row.y2) == pytest.approx(box)
    return path, A.Resize(64, 48)(image=load_rgb(path)[y1:y2, x1:x2])["image"]


@pytest.fixture(scope="module")
def face_run(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("faces") / "run"
    boxes = archive / TRUE_BOXES_FILE
    overrides = [
        "transform=face_crop",
        f"data.face_boxes={boxes}",
        "trainer.max_epochs=1",
        "transform.normalize=train_stats",
        "error_analysis=true",
    ]
    train(compose_config([*TINY, f"data.root={archive}", *overrides], run))
    return run


def predict_config(archive: Path, output: Path, *overrides: str):
    return compose_config(
        [f"data.root={archive}", f"output={output}", "num_workers=0", *overrides],
        output.parent,
        name="predict",
    )


@pytest.mark.slow
def test_a_face_crop_run_trains_predicts_and_ensembles_on_the_crops(
    archive: Path, face_run: Path, tmp_path: Path
) -> None:
    summary = pd.read_json(face_run / "summary.json", typ="series")
    assert summary["face_boxes"] == str((archive / TRUE_BOXES_FILE).resolve())
    assert summary["faces_found"] == summary["faces_photos"] == 7 * 33  # every photo
    ckpt = face_run / "checkpoints" / "best.ckpt"
    module = load_classifier(ckpt)
    eval_paths = list(read_eval(archive)["path"])
    dataset = eval_loader(module, eval_paths, 4, 0).dataset
    for k in HAND_WINDOWS:  # predict sees the hand crop
        path, expected = hand_crop(archive, k)
        assert dataset.paths[k] == path and np.array_equal(dataset.photos(k), expected)
    # the run's own submission (its data module's crops) is what predict gives (eval_loader's)
    single = predict_archive(predict_config(archive, tmp_path / "one.csv", f"ckpt={ckpt}"))
    assert single.equals(pd.read_csv(face_run / "submission.csv", dtype={"ImageID": str}))
    pair = predict_archive(predict_config(archive, tmp_path / "two.csv", f"ckpt=[{ckpt},{ckpt}]"))
    assert pair.equals(single)
    report = (face_run / "report.md").read_text()
    assert "## Face crop" in report and "a face in 231 of 231 photos" in report


@pytest.mark.slow
def test_mistakes_show_the_crop_the_network_saw(face_run: Path, archive: Path) -> None:
    run = analyse_run(face_run)
    mistakes = list(run.mistakes["path"].head(2))
    hand = [hand_crop(archive, k) for k in HAND_WINDOWS]  # photos of known window
    seen = network_view(run, [*mistakes, *(path for path, _ in hand)])
    assert seen is not None and len(seen) == len(mistakes) + len(hand)
    assert all(image.shape == (64, 48, 3) for image in seen[: len(mistakes)])
    for image, (_, expected) in zip(seen[len(mistakes) :], hand, strict=True):
        assert np.array_equal(image, expected)  # 64×48: under the thumbnail
    figure = face_crop_figure(run)  # the notebook's: 7 photos above their crops
    assert figure is not None and len(figure.axes) == 14
    assert network_view(replace(run, summary={}), mistakes) is None  # a run without face crop


@pytest.mark.slow
def test_predict_on_an_archive_without_boxes_detects_them_first(
    archive_copy: Path, face_run: Path, tmp_path: Path
) -> None:
    (archive_copy / TRUE_BOXES_FILE).unlink()
    ckpt = face_run / "checkpoints" / "best.ckpt"
    output = tmp_path / "submission.csv"
    predict_archive(predict_config(archive_copy, output, f"ckpt={ckpt}"))
    cache = Path(archive_cache(os.environ[CACHE_ENV], str(archive_copy)))
    detected = pd.read_csv(cache / "face_boxes.csv")  # the archive's folder of the user cache
    assert len(detected) == 7 * 33 and output.is_file()


@pytest.mark.slow
def test_predict_refuses_boxes_that_miss_photos_or_find_no_face(
    archive_copy: Path, face_run: Path, tmp_path: Path
) -> None:
    ckpt = face_run / "checkpoints" / "best.ckpt"
    boxes = true_boxes(archive_copy)
    train_only = archive_copy / "train_only.csv"
    boxes[boxes["path"].str.startswith("train/")].to_csv(train_only, index=False)
    no_face = archive_copy / "no_face.csv"
    boxes.assign(found=False).to_csv(no_face, index=False)
    output = tmp_path / "submission.csv"
    for file, message in (
        (train_only, "mask_age_gender.faces data.root="),
        (no_face, "no face found in any of the 21"),
    ):
        cfg = predict_config(archive_copy, output, f"ckpt={ckpt}", f"data.face_boxes={file}")
        with pytest.raises(FaceBoxesMissing, match=message):
            predict_archive(cfg)
    assert not output.exists() and not output.with_name("probabilities.csv").exists()
