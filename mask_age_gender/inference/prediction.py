"""What ``predict`` writes, from one checkpoint or an ensemble, for ``split=eval|val|oof``.

``split=eval`` writes the submission (``ImageID,ans`` in ``eval/info.csv`` order), the
18 probabilities beside it and, with ``people.group``, the groups (``groups.csv``);
``split=val|oof`` writes predictions in ``val_predictions.csv``'s
format and their scores, the ensemble's and each member's. ``write_submission`` and
``prediction_table`` are those two formats, which a training run writes too.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig

from mask_age_gender.data.archive import read_eval
from mask_age_gender.files import GROUPS, PROBABILITIES, write_csv_atomic, write_json_atomic
from mask_age_gender.inference.ensemble import (
    combine,
    fold_groups,
    labelled_photos,
    load_members,
    validation_photos,
)
from mask_age_gender.inference.people import PeopleOptions, agree_people, split_outputs
from mask_age_gender.inference.proba import eval_loader, predict_proba, resolve_device
from mask_age_gender.models.module import FaceClassifier
from mask_age_gender.models.scores import score

log = logging.getLogger(__name__)


def predict_archive(cfg: DictConfig) -> pd.DataFrame:
    """Predict what ``cfg.split`` names and write it; returns the table written."""
    people_options(cfg)  # refused before anything is loaded
    device = resolve_device(cfg.device)
    models = load_members(cfg.ckpt, cfg.ckpt_dir, dict(cfg.expect))
    log.info("%d checkpoint(s), ensemble=%s, tta=%s", len(models), cfg.ensemble, cfg.tta)
    if cfg.split == "eval":
        return predict_eval(cfg, models, device)
    if cfg.split in ("val", "oof"):
        return predict_folds(cfg, models, device)
    raise ValueError(f"split must be eval, val or oof, got {cfg.split!r}")


def ensemble_proba(
    cfg: DictConfig,
    models: dict[str, FaceClassifier],
    paths: list[str],
    device: torch.device,
    root: str | Path | None = None,
) -> list[np.ndarray]:
    """Each model's N × 18 probabilities of the photos (in the archive at ``root``; None: the
    model's own), through its own transform (a face crop with ``data.face_boxes`` or the
    archive's detected boxes), in float32 on ``device``; with ``people.group``, each photo's
    embedding after them (``people.split_outputs``)."""
    out = []
    embed = people_options(cfg).group
    boxes = {"face_boxes": cfg.data.get("face_boxes"), "cache_dir": cfg.data.get("cache_dir")}
    for path, module in models.items():
        loader = eval_loader(module, paths, cfg.batch_size, cfg.num_workers, root, **boxes)
        out.append(
            predict_proba(module, loader, device, "32-true", cfg.tta, name=path, embed=embed)
        )
    return out


def answers(
    cfg: DictConfig, outputs: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(labels, mean probabilities, groups) of the members' ``ensemble_proba``: combined by
    ``cfg.ensemble``; with ``people.group``, the photos grouped into people (else None) and
    made to agree as ``people.agree|structure`` say."""
    options = people_options(cfg)
    labels, probs = combine([split_outputs(out)[0] for out in outputs], cfg.ensemble)
    if not options.group:
        return labels, probs, None
    embedded = [split_outputs(out)[1] for out in outputs]
    agreed, groups = agree_people(probs, labels, embedded, options)
    return agreed, probs, groups


def people_options(cfg: DictConfig) -> PeopleOptions:
    return PeopleOptions(**cfg.get("people") or {})


def predict_eval(
    cfg: DictConfig, models: dict[str, FaceClassifier], device: torch.device
) -> pd.DataFrame:
    """The submission for ``eval/info.csv`` and, beside it, the probabilities behind it."""
    root = Path(cfg.data.root or Path(cfg.paths.data_dir) / "archive").expanduser().resolve()
    table = read_eval(root, cfg.data.verify_images)
    if table is None:
        raise FileNotFoundError(f"no eval/ folder under {root}: nothing to predict")
    outputs = ensemble_proba(cfg, models, list(table["path"]), device, root)
    labels, probs, groups = answers(cfg, outputs)
    output = Path(cfg.output or "submission.csv")
    submission = write_submission(output, table["image_id"], labels)
    if groups is not None:
        ids = table["image_id"].to_numpy()
        write_csv_atomic(output.with_name(GROUPS), pd.DataFrame({"ImageID": ids, "group": groups}))
    columns = pd.DataFrame(probs.round(6), columns=PROBABILITIES)
    write_csv_atomic(
        Path(cfg.probabilities or output.with_name("probabilities.csv")),
        pd.concat([table[["image_id"]].rename(columns={"image_id": "ImageID"}), columns], axis=1),
    )
    log.info("wrote %d predictions to %s", len(submission), output.resolve())
    return submission


def write_submission(path: Path, image_ids: pd.Series, labels: np.ndarray) -> pd.DataFrame:
    """The submission: ``ImageID,ans``, one row per eval photo in ``eval/info.csv`` order."""
    if len(labels) != len(image_ids):
        raise RuntimeError("predictions do not line up with eval/info.csv; nothing written")
    submission = pd.DataFrame({"ImageID": image_ids, "ans": labels})
    write_csv_atomic(path, submission)
    return submission


def predict_folds(
    cfg: DictConfig, models: dict[str, FaceClassifier], device: torch.device
) -> pd.DataFrame:
    """Predictions for the people the checkpoints validated on: one fold (``split=val``) or
    each checkpoint its own fold (``split=oof``), with the scores of ensemble and members."""
    groups = fold_groups(models, cfg.split)  # one archive and split for all: read it once
    labelled = labelled_photos(next(iter(models.values())), cfg.data.root)
    people = int(labelled["person"].nunique())
    tables, folds, members, numbered = [], {}, {}, 0
    for fold, paths in sorted(groups.items()):
        val = validation_photos(labelled, models[paths[0]])
        fold_models = {path: models[path] for path in paths}
        outputs = ensemble_proba(cfg, fold_models, list(val["path"]), device, cfg.data.root)
        truth = val["label"].to_numpy()
        for path, out in zip(paths, outputs, strict=True):
            probs = split_outputs(out)[0]
            members[path] = {"fold": fold, **rounded(score(probs.argmax(axis=1), truth))}
        labels, probs, found = answers(cfg, outputs)
        folds[fold] = rounded(score(labels, truth))
        table = prediction_table(val, labels, probs).assign(fold=fold)
        if found is not None:  # numbered on from the last fold's
            table["group"], numbered = found + numbered, numbered + int(found.max(initial=-1)) + 1
        tables.append(table)
    table = pd.concat(tables, ignore_index=True)
    result = {
        "split": cfg.split,
        "ensemble": cfg.ensemble,
        "tta": cfg.tta,
        "people_options": asdict(people_options(cfg)),
        "checkpoints": len(models),
        **rounded(score(table["pred"].to_numpy(), table["true"].to_numpy())),
        "photos": len(table),
        "people": int(table["person"].nunique()),
        "people_in_archive": people,
        "best_member_f1": max(m["f1"] for m in members.values()),
        "folds": folds,
        "members": members,
    }
    output = Path(cfg.output or f"{'val_ensemble' if cfg.split == 'val' else 'oof'}.csv")
    write_csv_atomic(output, table)
    write_json_atomic(output.with_suffix(".json"), result)
    log.info(
        "%s: macro F1 %.4f over %d photos of %d of %d people (best member %.4f); wrote %s",
        cfg.split,
        result["f1"],
        len(table),
        result["people"],
        people,
        result["best_member_f1"],
        output.resolve(),
    )
    return table


def rounded(values: dict[str, float]) -> dict[str, float]:
    return {name: round(value, 6) for name, value in values.items()}


def prediction_table(table: pd.DataFrame, preds: np.ndarray, probs: np.ndarray) -> pd.DataFrame:
    """One row per photo: path, person, age, true and predicted class, the 18 probabilities."""
    out = table[["path", "person", "age"]].assign(true=table["label"].to_numpy(), pred=preds)
    columns = pd.DataFrame(probs.round(6), columns=PROBABILITIES)
    return pd.concat([out.reset_index(drop=True), columns], axis=1)
