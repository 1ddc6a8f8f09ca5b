"""Where users run it: an archive on storage the run cannot write to (its tree compared before
and after: the tests run as root, so a chmod would prove nothing), and two jobs detecting faces
at once (DDP ranks doing so: ``test_scale``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mask_age_gender.data.faces.boxes import TRUE_BOXES_FILE
from mask_age_gender.inference.prediction import predict_archive
from mask_age_gender.resolvers import CACHE_ENV, archive_cache
from mask_age_gender.train import train

from .conftest import TINY, compose_config
from .test_scale import DETECTED


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``root``: (size, modification time in ns) by path."""
    listing = {".": (0, root.stat().st_mtime_ns)}
    for path in sorted(root.rglob("*")):
        stat = path.lstat()
        listing[str(path.relative_to(root))] = (
            stat.st_size if path.is_file() else 0,
            stat.st_mtime_ns,
        )
    return listing


@pytest.fixture
def no_boxes(archive_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An archive without boxes anywhere: no true boxes file, an empty user cache."""
    (archive_copy / TRUE_BOXES_FILE).unlink()
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "user_cache"))
    return archive_copy


@pytest.mark.slow
def test_train_predict_and_faces_leave_the_archive_as_it_was(
    no_boxes: Path, tmp_path: Path
) -> None:
    before = tree(no_boxes)
    run = tmp_path / "run"
    overrides = [
        "transform=face_crop",  # detected into the cache (prepare_data)
        "transform.normalize=train_stats",
        "data.cache=disk",
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=2",
    ]
    train(compose_config([*TINY, f"data.root={no_boxes}", *overrides], run))
    cache = Path(archive_cache(os.environ[CACHE_ENV], str(no_boxes)))
    assert (cache / "face_boxes.csv").is_file() and list(cache.glob("stats-*.json"))
    assert list(cache.glob("photos-*/*.npy"))
    predicted = compose_config(
        [f"data.root={no_boxes}", f"output={tmp_path / 'sub.csv'}", "num_workers=0",
         f"ckpt={run / 'checkpoints' / 'best.ckpt'}"],
        tmp_path, name="predict",
    )  # fmt: skip
    predict_archive(predicted)
    faces = [sys.executable, "-m", "mask_age_gender.faces", f"data.root={no_boxes}", "workers=1"]
    result = subprocess.run(faces, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "0 to detect" in result.stdout  # the run's boxes, found in the same cache
    assert tree(no_boxes) == before


DETECT = """
import logging, sys
logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
from mask_age_gender.data.faces.resolve import detect_missing
detect_missing(sys.argv[1], None, sys.argv[2])
"""


@pytest.mark.slow
def test_two_jobs_started_together_detect_once(no_boxes: Path, tmp_path: Path) -> None:
    """Two processes that need the same boxes file at once (ranks srun starts together, two
    jobs of a sweep): one detects under the file's lock, the other waits and reuses it."""
    cache = tmp_path / "shared_cache"
    jobs = [
        subprocess.Popen(
            [sys.executable, "-c", DETECT, str(no_boxes), str(cache)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for _ in range(2)
    ]
    outputs = [job.communicate(timeout=300)[0] for job in jobs]
    assert [job.returncode for job in jobs] == [0, 0], outputs
    detected = sorted(int(n) for out in outputs for n in DETECTED.findall(out))
    assert detected in ([0, 7 * 33], [7 * 33]), outputs  # once; the other found it done
    assert (cache / "face_boxes.csv").is_file()
