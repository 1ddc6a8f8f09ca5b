"""Backbones (timm, real weights), heads and the offline-pretrained EfficientNet-Lite0."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from PIL import Image
from sklearn.datasets import load_sample_images

from mask_age_gender.labels import decode
from mask_age_gender.models.backbone import create_backbone
from mask_age_gender.models.heads import MultiHead, SingleHead
from mask_age_gender.models.module import FaceClassifier, compile_mode

from .conftest import CONF

DAISY = 985  # ImageNet class index


def flower_batch(size: int = 224) -> torch.Tensor:
    """scikit-learn's bundled flower.jpg, resized and normalised with mean = std = 0.5."""
    image = Image.fromarray(load_sample_images().images[1]).resize((size, size), Image.BICUBIC)
    pixels = torch.tensor(np.asarray(image), dtype=torch.float32).permute(2, 0, 1) / 255
    return ((pixels - 0.5) / 0.5).unsqueeze(0)


def test_bundled_weights_make_efficientnet_lite0_really_pretrained() -> None:
    config = OmegaConf.load(CONF / "model" / "efficientnet_lite0.yaml")
    backbone = instantiate(config).eval()
    assert backbone.pretrained_cfg["mean"] == (0.5, 0.5, 0.5)
    from mask_age_gender.models.backbone import package_state_dict

    classifier = torch.nn.Linear(backbone.num_features, 1000)
    state = package_state_dict()
    classifier.load_state_dict(
        {"weight": state["classifier.weight"], "bias": state["classifier.bias"]}
    )
    with torch.no_grad():
        logits = classifier(backbone(flower_batch()))
    assert logits.argmax(dim=1).item() == DAISY


def test_random_init_does_not_recognise_the_daisy() -> None:
    """The control for the test above: the daisy comes from the bundled weights, not from the
    classifier alone. Seeded, so the random features are the same on every run."""
    torch.manual_seed(0)
    backbone = create_backbone("tf_efficientnet_lite0", weights=None).eval()
    from mask_age_gender.models.backbone import package_state_dict

    state = package_state_dict()  # the real classifier on random features: not a daisy
    classifier = torch.nn.Linear(backbone.num_features, 1000)
    classifier.load_state_dict(
        {"weight": state["classifier.weight"], "bias": state["classifier.bias"]}
    )
    with torch.no_grad():
        top5 = classifier(backbone(flower_batch())).topk(5, dim=1).indices
    assert DAISY not in top5.tolist()[0]


def test_local_weights_file_is_loaded(tmp_path: Path) -> None:
    source = create_backbone("test_resnet")
    full = {**source.state_dict(), "fc.weight": torch.zeros(10, source.num_features)}
    torch.save(full, tmp_path / "weights.pth")  # a classifier in the file is skipped
    loaded = create_backbone("test_resnet", weights=str(tmp_path / "weights.pth"))
    for name, tensor in source.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name


def test_weights_of_another_model_are_refused(tmp_path: Path) -> None:
    torch.save(create_backbone("test_efficientnet").state_dict(), tmp_path / "other.pth")
    with pytest.raises(RuntimeError, match="does not fit"):
        create_backbone("test_resnet", weights=str(tmp_path / "other.pth"))
    with pytest.raises(ValueError, match="model=efficientnet_lite0"):
        create_backbone("test_resnet", weights="package")


@pytest.mark.parametrize("config", sorted((CONF / "model").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_model_option_builds(config: Path) -> None:
    """Real architectures are built on the meta device (shapes only, no memory, no download)."""
    options = OmegaConf.load(config)
    if OmegaConf.is_missing(options, "name"):  # model=timm: the name is given on the command line
        options.name = "test_resnet"
    options.pretrained = False
    if options.weights == "package" or options.name.startswith("test_"):
        backbone = instantiate(options)
        assert backbone(torch.zeros(2, 3, 64, 48)).shape == (2, backbone.num_features)
    else:
        with torch.device("meta"):
            backbone = instantiate(options)
        assert backbone.num_features > 0


def test_multi_head_probabilities_are_the_product_of_its_softmaxes() -> None:
    torch.manual_seed(0)
    head = MultiHead(in_features=8)
    logits = head(torch.randn(5, 8))
    probs = head.probabilities(logits)
    assert probs.shape == (5, 18)
    assert torch.allclose(probs.sum(dim=1), torch.ones(5))
    parts = {task: logits[task].softmax(dim=1) for task in logits}
    for label in range(18):
        mask, gender, age = decode(label)
        expected = parts["mask"][:, mask] * parts["gender"][:, gender] * parts["age"][:, age]
        assert torch.allclose(probs[:, label], expected)


def test_heads_give_targets_for_their_tasks() -> None:
    labels = torch.tensor([0, 17, 13])
    assert SingleHead(4).targets(labels)["class"].tolist() == [0, 17, 13]
    targets = MultiHead(4).targets(labels)
    assert targets["mask"].tolist() == [0, 2, 2]
    assert targets["gender"].tolist() == [0, 1, 0]
    assert targets["age"].tolist() == [0, 2, 1]


def test_compile_modes_are_checked_and_cuda_graph_modes_pad_evaluation(
    train_config: Callable[..., DictConfig],
) -> None:
    assert [compile_mode(s) for s in (False, True, "default", "max-autotune")] == [
        None, "default", "default", "max-autotune",
    ]  # fmt: skip
    with pytest.raises(ValueError, match=r"model.compile must be false, true or one of"):
        compile_mode("fastest")
    config = OmegaConf.to_container(train_config(), resolve=True)
    config["data"] |= {"mean": [0.5] * 3, "std": [0.5] * 3}
    torch.manual_seed(0)
    module = FaceClassifier(config).eval()
    photos = torch.rand(5, 3, 64, 48)
    plain = module.predict_proba(photos)
    module.eval_batch = 16  # as reduce-overhead sets it from data.batch_size
    padded = module.predict_proba(photos)
    assert padded.shape == (5, 18) and torch.allclose(padded, plain, atol=1e-6)
