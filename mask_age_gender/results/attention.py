"""Where the network looks: a Grad-CAM map of every validation photo, and the share of each
map's mass that falls on the face.

The maps are captum's ``LayerGradCam`` at the backbone's last stage (timm's
``feature_info[-1]``: ``layer4`` of a ResNet, ``blocks.6`` of EfficientNet-Lite0, ``stages.3``
of a ConvNeXt), for the class the network predicted, scored by its logit (three heads: the sum
of its mask, gender and age logits, ``head.class_scores``), kept where positive and upsampled
bilinearly to the network's input (``LayerAttribution.interpolate``). ``LayerGradCam``
averages the gradients over every dimension after the second, so it maps only (B, C, h, w)
outputs: a ViT's tokens and a channels-last stage (Swin, MambaOut) get no maps
(:class:`CamUnsupported`), and the summary says why.

Each photo is the one the network saw: the checkpoint's own deterministic transform (crop,
resize), as ``predict`` feeds it. Its face box is drawn as a mask on the raw photo and goes
through the same crop and resize (albumentations moves a mask with its image), so the share is
``sum(map × box) / sum(map)`` in the network's view. A uniform map would score the box's area
in that view (``face_area``): the share means something only above it.

Boxes: the run's, by the rule training and ``predict`` follow (``data/faces/resolve.py``):
``data.face_boxes``, else the detector's ``face_boxes.csv`` in ``data.cache_dir``; no maps are
measured where that file is not there (``python -m mask_age_gender.faces`` writes it). A photo
without a found face, whose face the crop leaves out, or whose map is all zero (the predicted
class's score falls wherever the stage's features rise) gets no share; ``val_cam_empty_maps``
counts the last. What the maps expect to meet (a layout they cannot map, a boxes file that is
not there or fails its checks) becomes the summary's ``val_cam_note``; anything else fails.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from captum.attr import LayerAttribution, LayerGradCam
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from mask_age_gender.data.dataset import FaceDataset
from mask_age_gender.data.faces.boxes import FaceBoxesError, box_rows, boxes_of, read_face_boxes
from mask_age_gender.data.faces.resolve import boxes_file
from mask_age_gender.data.photos import load_rgb
from mask_age_gender.inference.checkpoints import load_classifier
from mask_age_gender.inference.proba import eval_loader
from mask_age_gender.labels import Mask, decode
from mask_age_gender.models.module import FaceClassifier
from mask_age_gender.results.run_reader import read_summary

log = logging.getLogger(__name__)
MASK_STATES = tuple(state.name.lower() for state in Mask)  # wear, incorrect, not_wear
CAM_BATCH = 32  # photos a Grad-CAM pass: float32 and its autograd graph, whatever data.batch_size


class CamUnsupported(ValueError):
    """A backbone whose last stage gives no feature map (a ViT's tokens): no Grad-CAM."""


@dataclass
class View:
    """One photo as the network saw it, with its map and its face box there."""

    image: np.ndarray  # H×W×3 uint8, after crop and resize
    cam: np.ndarray  # H×W, ≥ 0
    box: tuple[int, int, int, int] | None  # x1, y1, x2, y2 in the view; None: no face in it


@dataclass
class Attention:
    """The maps of a run's validation photos: one row per photo, and the views to draw."""

    table: pd.DataFrame  # path, true, pred, true_mask, face_share, face_area, empty_map
    layer: str | None = None  # the mapped layer; None: no maps (``note`` says why)
    boxes: Path | None = None  # the face boxes file
    seconds: float = 0.0  # decoding, preparing, forward and Grad-CAM of every photo
    views: dict[str, View] = field(default_factory=dict)  # by path, the photos asked for
    note: str | None = None


@dataclass
class CamLayer:
    """Where the maps are taken: a backbone's last stage, by timm's ``feature_info``."""

    name: str
    module: nn.Module
    channels: int  # what its (B, C, h, w) output must have as C


def cam_layer(backbone: nn.Module) -> CamLayer:
    """The backbone's last stage (timm's ``feature_info[-1]``)."""
    info = getattr(backbone, "feature_info", None)
    if not info:
        raise CamUnsupported(f"{type(backbone).__name__} names no stages (timm's feature_info)")
    last = info[-1]
    return CamLayer(last["module"], backbone.get_submodule(last["module"]), last["num_chs"])


def class_maps(
    forward: Callable[[torch.Tensor], torch.Tensor],
    layer: CamLayer,
    images: torch.Tensor,
    classes: torch.Tensor,
) -> torch.Tensor:
    """(B, H, W) Grad-CAM maps of ``classes`` at ``layer``, ReLU'd, at the images' size.

    ``forward`` maps images to (B, classes) scores, the module behind it in eval mode. Refuses a
    layer whose output is not a (B, C, h, w) feature map (:func:`check_feature_map`)."""
    shapes: list[tuple[int, ...]] = []

    def record(_module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        shapes.append(tuple(output.shape))

    handle = layer.module.register_forward_hook(record)
    try:
        maps = LayerGradCam(forward, layer.module).attribute(
            images, target=classes, relu_attributions=True
        )
    finally:
        handle.remove()
    check_feature_map(layer, shapes[0])
    size = tuple(images.shape[-2:])
    return LayerAttribution.interpolate(maps, size, "bilinear").squeeze(1).detach().float().cpu()


def check_feature_map(layer: CamLayer, shape: tuple[int, ...]) -> None:
    """Refuse what ``LayerGradCam`` would map wrongly: it averages the gradients over every
    dimension after the second, so they must be the spatial ones of a (B, C, h, w) output."""
    if len(shape) == 4 and shape[1] == layer.channels:
        return
    if len(shape) == 3:
        what = "tokens (batch, tokens, channels), as a ViT's blocks give"
    elif len(shape) == 4 and shape[-1] == layer.channels:
        what = "a channels-last (batch, height, width, channels) map, as Swin or MambaOut give"
    else:
        what = f"no (batch, {layer.channels} channels, height, width) feature map"
    raise CamUnsupported(
        f"{layer.name} gives {what} (shape {shape}): captum's LayerGradCam maps only "
        "(batch, channels, height, width) feature maps"
    )


def face_share(maps: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Per map (…, H, W), the share of its mass inside its box mask (0/1, same shape):
    ``sum(map × box) / sum(map)``; NaN for an empty map or an empty box."""
    maps, boxes = np.asarray(maps, dtype=np.float64), np.asarray(boxes, dtype=np.float64)
    mass, inside = maps.sum(axis=(-2, -1)), (maps * boxes).sum(axis=(-2, -1))
    share = np.divide(inside, mass, out=np.full_like(mass, np.nan), where=mass > 0)
    return np.where(boxes.sum(axis=(-2, -1)) > 0, share, np.nan)


def boxes_source(config: dict[str, Any]) -> Path | None:
    """The run's face boxes file (``faces.resolve.boxes_file``); None: it is not there."""
    path = boxes_file(config["data"].get("face_boxes"), config["data"].get("cache_dir"))
    return path if path is not None and path.is_file() else None


def attend_run(
    run_dir: Path, predictions: pd.DataFrame, shown: Sequence[str] = (), device: str = "cpu"
) -> Attention:
    """The maps of a run's validation photos (``predictions``: ``val_predictions.csv``) by its
    best checkpoint; the views of the ``shown`` paths are kept for the figures. Without a
    checkpoint or a feature map, no maps: ``note`` says why."""
    table = predictions[["path", "true", "pred"]].reset_index(drop=True)
    table = table.assign(true_mask=[MASK_STATES[m] for m in decode(table["true"].to_numpy())[0]])
    table = table.assign(face_share=np.nan, face_area=np.nan, empty_map=np.nan)
    checkpoint = read_summary(run_dir).get("best_ckpt")
    if not checkpoint or not (Path(run_dir) / checkpoint).is_file():
        return Attention(table, note="no best checkpoint in the run")
    try:
        module = load_classifier(Path(run_dir) / checkpoint)
        boxes = boxes_source(module.hparams.config)
        return _attend(module, table, boxes, set(shown), torch.device(device))
    except (CamUnsupported, FaceBoxesError) as err:  # expected: a note, the run finishes
        log.warning("no class-activation maps: %s", err)
        return Attention(table, note=str(err))


def _attend(
    module: FaceClassifier,
    table: pd.DataFrame,
    boxes_file: Path | None,
    shown: set[str],
    device: torch.device,
) -> Attention:
    paths = list(table["path"])
    data = module.hparams.config["data"]
    photos = eval_loader(module, paths, CAM_BATCH, data.get("num_workers"))
    seen = MaskedViews(photos.dataset, face_boxes(boxes_file, paths, data["root"]))
    loader = DataLoader(seen, batch_size=CAM_BATCH, num_workers=photos.num_workers)
    layer = cam_layer(module.backbone)
    module.to(device).eval()

    def scored(images: torch.Tensor) -> torch.Tensor:  # what Grad-CAM differentiates
        return module.head.class_scores(module(images))

    start = time.perf_counter()
    shares, areas, empty, views = [], [], [], {}
    predicted = torch.as_tensor(table["pred"].to_numpy(copy=True))
    try:
        bar = tqdm(loader, desc="class-activation maps", unit="batch", disable=None)
        for number, (inputs, images, masks) in enumerate(bar):
            batch = range(number * CAM_BATCH, number * CAM_BATCH + len(inputs))
            classes = predicted[batch.start : batch.stop].to(device)
            maps = class_maps(scored, layer, inputs.to(device), classes).numpy()
            masks = masks.numpy()
            shares.append(face_share(maps, masks))
            areas.append(np.where(masks.any(axis=(1, 2)), masks.mean(axis=(1, 2)), np.nan))
            empty.append(~(maps > 0).any(axis=(1, 2)))
            for k, image, mask, cam in zip(batch, images, masks, maps, strict=True):
                if paths[k] in shown:
                    views[paths[k]] = View(image.numpy(), cam, mask_box(mask))
    finally:
        module.cpu()  # off the GPU, also after an error
    seconds = time.perf_counter() - start
    table = table.assign(
        face_share=np.concatenate(shares),
        face_area=np.concatenate(areas),
        empty_map=np.concatenate(empty),
    )
    if boxes_file is None:
        note = "no face boxes: run python -m mask_age_gender.faces"
    elif table["face_share"].isna().all():
        note = f"no validation photo has a face box of {boxes_file} in view and a non-empty map"
    else:
        note = None
    return Attention(table, f"backbone.{layer.name}", boxes_file, seconds, views, note)


def face_boxes(boxes_file: Path | None, paths: list[str], root: str) -> np.ndarray:
    """N × 4 face boxes of the photos in their own pixels, NaN where none (no file, no row,
    no face found)."""
    if boxes_file is None:
        return np.full((len(paths), 4), np.nan)
    return box_rows(boxes_of(read_face_boxes(boxes_file, root), paths, root))


class MaskedViews(Dataset):
    """The photos as the network saw them, for a loader's workers: (its input, the prepared
    H×W×3 uint8 view, the face box's 0/1 mask of that view)."""

    def __init__(self, photos: FaceDataset, faces: np.ndarray):
        self.photos, self.faces = photos, faces

    def __len__(self) -> int:
        return len(self.photos)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        """(the network's input, photo ``index`` prepared as the network sees it before
        normalisation, its face box as a 0/1 mask of the same pixels: all 0 where it has none,
        the box rounded to whole pixels and clipped to the photo)."""
        image, face = load_rgb(self.photos.paths[index]), self.faces[index]
        mask = np.zeros(image.shape[:2], dtype=np.uint8)
        if not np.isnan(face).any():
            x1, y1, x2, y2 = (int(round(v)) for v in face)
            mask[max(y1, 0) : max(y2, 0), max(x1, 0) : max(x2, 0)] = 1
        crop_box = None if self.photos.boxes is None else self.photos.boxes[index]
        image, mask = self.photos.transform.prepare_with_mask(image, crop_box, mask)
        return self.photos.transform.finish_image(image), image, mask


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """The bounding box (x1, y1, x2, y2, exclusive ends) of a mask's 1s; None for none."""
    rows, columns = np.nonzero(mask)
    if not len(rows):
        return None
    return int(columns.min()), int(rows.min()), int(columns.max()) + 1, int(rows.max()) + 1


def attention_summary(attention: Attention) -> dict[str, Any]:
    """``summary.json``'s keys: the mean face share over the photos with one, by true mask
    state, the uniform map's share (the box's area), what was mapped and at what cost."""
    if attention.layer is None:
        return {"val_cam_face_share": None, "val_cam_note": attention.note}
    table = attention.table
    measured = table[table["face_share"].notna()]
    by_state = measured.groupby("true_mask")["face_share"].mean()
    summary = {
        "val_cam_face_share": rounded(measured["face_share"].mean()),
        **{f"val_cam_face_share_{s}": rounded(by_state.get(s, np.nan)) for s in MASK_STATES},
        "val_cam_face_area": rounded(measured["face_area"].mean()),
        "val_cam_photos": len(measured),
        "val_cam_empty_maps": int(table["empty_map"].sum()),
        "val_cam_layer": attention.layer,
        "val_cam_boxes": str(attention.boxes) if attention.boxes else None,
        "val_cam_seconds_per_1000": round(attention.seconds / max(len(table), 1) * 1000, 2),
    }
    return summary | ({"val_cam_note": attention.note} if attention.note else {})


def rounded(value: float) -> float | None:
    return None if pd.isna(value) else round(float(value), 6)
