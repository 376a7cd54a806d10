"""The RGA network: shapes, attention ranges, gradients, determinism and the paper's exact size."""

import pytest
import torch
import torch.nn.functional as F
from helpers import randomize_batchnorm

from model import RGAModule, build_model
from model.rga_naive import materialized_copy

SMALL = (64, 32)
BACKBONE_DIMS = {"resnet18": 512, "resnet34": 512, "resnet50": 2048}


@pytest.mark.parametrize("backbone", ["resnet18", "resnet34", "resnet50"])
@pytest.mark.parametrize("attention", ["rgasc", "rgas", "rgac", "none"])
def test_every_variant_gives_the_documented_outputs_in_both_modes(backbone, attention):
    net = build_model(backbone=backbone, attention=attention, input_size=SMALL, num_classes=7)
    dim = BACKBONE_DIMS[backbone]
    x = torch.randn(4, 3, *SMALL)
    pooled, bn_feature, logits = net.train()(x)
    assert pooled.shape == bn_feature.shape == (4, dim)
    assert logits.shape == (4, 7)
    with torch.no_grad():
        assert net.eval()(x).shape == (4, dim)
        assert torch.allclose(net.embed(x).norm(dim=1), torch.ones(4), atol=1e-5)


def test_without_classifier_training_mode_returns_no_logits():
    net = build_model(backbone="resnet18", input_size=SMALL).train()
    pooled, bn_feature, logits = net(torch.randn(2, 3, *SMALL))
    assert logits is None and pooled.shape == bn_feature.shape == (2, 512)


def test_paper_parameter_count_is_exact():
    net = build_model(backbone="resnet50", attention="rgasc", input_size=(256, 128))
    assert sum(p.numel() for p in net.parameters()) == 29_826_224
    with_classifier = build_model(num_classes=767)
    assert sum(p.numel() for p in with_classifier.parameters()) == 31_397_040


def test_rga_modules_match_the_paper_layout_per_stage():
    net = build_model(num_classes=767)
    counts = [sum(p.numel() for p in getattr(net.backbone, f"rga_att{i}").parameters()) for i in range(1, 5)]
    assert counts == [2_673_172, 329_796, 668_908, 2_642_220]
    assert len(net.state_dict()) == 612
    first = [k.split(".")[2] for k in net.state_dict() if k.startswith("backbone.rga_att1.")]
    order = list(dict.fromkeys(first))
    assert order == [
        "gx_spatial",
        "gx_channel",
        "gg_spatial",
        "gg_channel",
        "W_spatial",
        "W_channel",
        "theta_spatial",
        "phi_spatial",
        "theta_channel",
        "phi_channel",
    ]
    assert net.state_dict()["backbone.rga_att1.gg_spatial.0.weight"].shape == (256, 4096, 1, 1)
    assert net.state_dict()["backbone.rga_att4.W_channel.0.weight"].shape == (32, 257, 1, 1)


def test_last_stride_is_one_so_stage_four_keeps_stage_three_resolution():
    net = build_model(backbone="resnet50", attention="none", input_size=(256, 128)).eval()
    backbone = net.backbone
    x = torch.randn(1, 3, 256, 128)
    with torch.no_grad():
        x = backbone.maxpool(backbone.relu(backbone.bn1(backbone.conv1(x))))
        x3 = backbone.layer3(backbone.layer2(backbone.layer1(x)))
        x4 = backbone.layer4(x3)
    assert x3.shape[-2:] == x4.shape[-2:] == (16, 8)


def test_bn_neck_bias_is_frozen_at_zero_and_classifier_has_no_bias():
    net = build_model(backbone="resnet18", input_size=SMALL, num_classes=5)
    assert not net.feat_bn.bias.requires_grad
    assert torch.count_nonzero(net.feat_bn.bias) == 0
    assert net.cls.bias is None
    assert 0.0005 < net.cls.weight.std().item() < 0.002


@pytest.mark.parametrize("attention", ["rgasc", "rgas", "rgac"])
def test_attention_maps_lie_strictly_between_zero_and_one(attention):
    module = RGAModule(64, 8 * 4, use_spatial=attention != "rgac", use_channel=attention != "rgas").eval()
    x = torch.randn(3, 64, 8, 4) * 5
    with torch.no_grad():
        maps = []
        if module.use_spatial:
            maps.append(module.spatial_attention(x))
            assert maps[-1].shape == (3, 1, 8, 4)
        if module.use_channel:
            maps.append(module.channel_attention(x))
            assert maps[-1].shape == (3, 64, 1, 1)
    for attention_map in maps:
        assert attention_map.min() > 0 and attention_map.max() < 1


def test_gradients_reach_every_trainable_parameter():
    net = build_model(backbone="resnet18", attention="rgasc", input_size=SMALL, num_classes=4).train()
    pooled, _, logits = net(torch.randn(4, 3, *SMALL))
    (F.cross_entropy(logits, torch.tensor([0, 1, 2, 3])) + pooled.pow(2).mean()).backward()
    starved = [
        n for n, p in net.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())
    ]
    assert starved == []


def test_eval_is_deterministic():
    net = randomize_batchnorm(build_model(backbone="resnet18", input_size=SMALL)).eval()
    x = torch.randn(3, 3, *SMALL)
    with torch.no_grad():
        assert torch.equal(net(x), net(x))


def test_wrong_input_size_is_refused_with_the_expected_size():
    net = build_model(backbone="resnet18", input_size=SMALL).eval()
    with pytest.raises(ValueError, match=r"\(N, 3, 64, 32\)"):
        net(torch.randn(1, 3, 128, 64))


@pytest.mark.parametrize("attention", ["rgasc", "rgas", "rgac"])
def test_factored_relations_equal_the_materialised_paper_form_at_full_size(attention):
    net = randomize_batchnorm(build_model(backbone="resnet50", attention=attention)).eval()
    naive = materialized_copy(net)
    x = torch.randn(2, 3, 256, 128)
    with torch.no_grad():
        ours, reference = net(x), naive(x)
        ours_embedding, reference_embedding = net.embed(x), naive.embed(x)
    assert torch.allclose(ours, reference, rtol=1e-5, atol=1e-4)
    assert (ours_embedding - reference_embedding).abs().max() < 1e-5
    assert F.cosine_similarity(ours, reference).min() > 0.99999


def test_factored_relations_are_exact_in_training_mode_too():
    net = build_model(backbone="resnet18", attention="rgasc", input_size=(128, 64), num_classes=3).double()
    naive = materialized_copy(net)
    x = torch.randn(4, 3, 128, 64, dtype=torch.float64)
    for ours, reference in zip(net.train()(x), naive.train()(x), strict=True):
        assert torch.allclose(ours, reference, atol=1e-9)


def test_unknown_backbone_or_attention_is_a_clear_error():
    with pytest.raises(ValueError, match="resnet18, resnet34, resnet50"):
        build_model(backbone="vgg16")
    with pytest.raises(ValueError, match="rgasc"):
        build_model(attention="se")
