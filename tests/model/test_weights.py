"""Loading ImageNet backbones, the paper's released checkpoints and our own, with clear errors."""

import pytest
import torch
import torchvision
from helpers import randomize_batchnorm

from model import WeightsError, build_model, checkpoint_payload, load_checkpoint
from model.rga_naive import materialized_copy

SMALL = (64, 32)


@pytest.fixture
def imagenet_resnet18(tmp_path):
    """A torchvision-named ResNet-18 state dict with random weights, saved like the ImageNet file."""
    reference = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18-imagenet.pth"
    torch.save(reference.state_dict(), path)
    return reference, path


def test_pretrained_trunk_is_loaded_key_by_key(imagenet_resnet18):
    reference, path = imagenet_resnet18
    net = build_model(backbone="resnet18", attention="rgasc", input_size=SMALL, pretrained=path)
    ours = net.backbone.state_dict()
    for key, value in reference.state_dict().items():
        if key.startswith("fc."):
            continue
        assert torch.equal(ours[key], value), key


def test_pretrained_weights_reproduce_the_plain_resnet_features(imagenet_resnet18):
    reference, path = imagenet_resnet18
    net = build_model(backbone="resnet18", attention="none", input_size=(224, 224), pretrained=path).eval()
    reference.eval()
    reference.layer4[0].conv1.stride = (1, 1)
    reference.layer4[0].downsample[0].stride = (1, 1)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = torch.flatten(
            reference.avgpool(
                reference.layer4(
                    reference.layer3(
                        reference.layer2(
                            reference.layer1(
                                reference.maxpool(reference.relu(reference.bn1(reference.conv1(x))))
                            )
                        )
                    )
                )
            ),
            1,
        )
        pooled, _ = net.features(x)
    assert torch.allclose(pooled, expected, atol=1e-5)


def test_missing_pretrained_file_names_the_file(tmp_path):
    missing = tmp_path / "resnet50-19c8e357.pth"
    with pytest.raises(WeightsError, match="resnet50-19c8e357.pth: weights file not found"):
        build_model(pretrained=missing)


def test_pretrained_file_of_another_architecture_is_refused(imagenet_resnet18):
    _, path = imagenet_resnet18
    with pytest.raises(WeightsError, match=r"resnet18-imagenet.pth.*resnet50.*wrong shapes") as info:
        build_model(backbone="resnet50", pretrained=path)
    assert "layer1.0.conv1.weight" in str(info.value)


def test_truncated_pretrained_file_is_refused(imagenet_resnet18, tmp_path):
    _, path = imagenet_resnet18
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    with pytest.raises(WeightsError, match="truncated.pth: cannot read weights"):
        build_model(backbone="resnet18", pretrained=truncated)


def paper_checkpoint(tmp_path, net, prefix="module.", drop_counters=False):
    """Save ``net`` the way the paper's trainer did: checkpoint_N.pth.tar with a state_dict and more."""
    state = {prefix + k: v for k, v in net.state_dict().items()}
    if drop_counters:
        state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "checkpoint_600.pth.tar"
    torch.save({"state_dict": state, "epoch": 600, "best_top1": 0, "optimizer": {"state": {}}}, path)
    return path


@pytest.mark.parametrize("attention", ["rgasc", "rgas", "rgac"])
def test_paper_checkpoint_loads_and_embeds_like_the_paper_network(tmp_path, attention):
    trained = randomize_batchnorm(build_model(attention=attention, num_classes=767)).eval()
    paper_network = materialized_copy(trained)
    path = paper_checkpoint(tmp_path, paper_network)
    net = load_checkpoint(path)
    assert (net.config.backbone, net.config.attention) == ("resnet50", attention)
    assert net.config.input_size == (256, 128) and net.config.num_classes == 767
    x = torch.randn(2, 3, 256, 128)
    with torch.no_grad():
        assert (net.embed(x) - paper_network.embed(x)).abs().max() < 1e-5


def test_paper_checkpoint_without_prefix_or_bn_counters_loads(tmp_path):
    trained = randomize_batchnorm(
        build_model(backbone="resnet18", input_size=(128, 64), num_classes=3)
    ).eval()
    path = paper_checkpoint(tmp_path, trained, prefix="", drop_counters=True)
    net = load_checkpoint(path)
    assert net.config.input_size == (128, 64) and net.config.backbone == "resnet18"
    x = torch.randn(2, 3, 128, 64)
    with torch.no_grad():
        assert torch.allclose(net(x), trained(x), atol=1e-5)


def test_paper_checkpoint_with_a_missing_key_lists_it(tmp_path):
    net = build_model(backbone="resnet18", input_size=SMALL)
    path = paper_checkpoint(tmp_path, net)
    payload = torch.load(path, weights_only=True)
    del payload["state_dict"]["module.backbone.rga_att2.W_channel.3.weight"]
    torch.save(payload, path)
    with pytest.raises(WeightsError, match=r"missing keys: backbone.rga_att2.W_channel.3.weight"):
        load_checkpoint(path)


def test_paper_checkpoint_with_a_wrong_shape_lists_it(tmp_path):
    net = build_model(backbone="resnet18", input_size=SMALL, num_classes=4)
    path = paper_checkpoint(tmp_path, net)
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["module.feat_bn.weight"] = torch.ones(100)
    torch.save(payload, path)
    with pytest.raises(WeightsError, match=r"wrong shapes: feat_bn.weight \(100,\) != \(512,\)"):
        load_checkpoint(path)


def test_own_checkpoint_round_trips(tmp_path):
    net = randomize_batchnorm(build_model(backbone="resnet34", attention="rgac", input_size=SMALL)).eval()
    path = tmp_path / "ours.pt"
    torch.save({**checkpoint_payload(net), "epoch": 3}, path)
    loaded = load_checkpoint(path)
    assert loaded.config == net.config and not loaded.training
    x = torch.randn(2, 3, *SMALL)
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))


def test_a_file_that_is_no_checkpoint_is_refused(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(WeightsError, match="other.pt: neither"):
        load_checkpoint(path)
