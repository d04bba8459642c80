"""The trunk's small-map convolutions compute what nn.Conv2d computes, forward and backward."""

import copy

import pytest
import torch
from torch import nn

from mer.learn.model import MSCNN, SmallMapConv2d, resnet18_trunk

# (in, out, kernel, stride, padding, input side, bias): ResNet-18's maps at 32 px (layer3 2x2,
# layer4 2x2 -> 1x1 and 1x1) and shapes that must fall back to the plain convolution.
SHAPES = [
    (8, 6, 3, 1, 1, 2, False),
    (8, 6, 3, 2, 1, 2, False),
    (8, 6, 3, 1, 1, 1, True),
    (8, 6, 1, 2, 0, 2, False),
    (8, 6, 3, 2, 1, 4, False),
    (3, 6, 7, 2, 3, 8, True),
    (4, 5, 5, 1, 2, 3, False),
]


@pytest.mark.parametrize("shape", SHAPES)
def test_small_map_convolution_matches_conv2d_forward_and_backward(shape):
    cin, cout, kernel, stride, padding, side, bias = shape
    torch.manual_seed(0)
    plain = nn.Conv2d(cin, cout, kernel, stride, padding, bias=bias).double()
    small = copy.deepcopy(plain)
    small.__class__ = SmallMapConv2d
    x = torch.rand(3, cin, side, side, dtype=torch.double, requires_grad=True)
    expected = plain(x)
    got = small(x)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected)
    upstream = torch.rand_like(expected)
    wanted = [plain.weight, x] + ([plain.bias] if bias else [])
    mine = [small.weight, x] + ([small.bias] if bias else [])
    for a, b in zip(
        torch.autograd.grad(expected, wanted, upstream),
        torch.autograd.grad(got, mine, upstream),
        strict=True,
    ):
        torch.testing.assert_close(b, a)


def test_small_maps_take_the_matrix_product_only_where_every_window_covers_the_input():
    conv = nn.Conv2d(4, 4, 3, 1, 1, bias=False)
    conv.__class__ = SmallMapConv2d
    assert conv._whole_input_windows(1, 1) is not None
    assert conv._whole_input_windows(2, 2) is not None
    assert conv._whole_input_windows(3, 3) is None  # an edge window misses the far column
    strided = nn.Conv2d(4, 4, 3, 2, 1, bias=False)
    strided.__class__ = SmallMapConv2d
    assert strided._whole_input_windows(2, 2) is not None
    assert strided._whole_input_windows(4, 4) is None


def test_trunk_keeps_torchvisions_weights_initialisation_and_state_dict():
    torch.manual_seed(0)
    trunk = resnet18_trunk(3)
    torch.manual_seed(0)
    reference = resnet18_trunk(3)
    for module in reference.modules():
        if type(module) is SmallMapConv2d:
            module.__class__ = nn.Conv2d
    assert any(type(m) is SmallMapConv2d for m in trunk.modules())
    assert trunk.state_dict().keys() == reference.state_dict().keys()
    for name, tensor in trunk.state_dict().items():
        assert torch.equal(tensor, reference.state_dict()[name]), name


def test_a_32_px_training_step_matches_the_plain_convolutions():
    torch.manual_seed(0)
    model = MSCNN(n_classes=3, dense_units=16).double()
    plain = copy.deepcopy(model)
    for module in plain.modules():
        if type(module) is SmallMapConv2d:
            module.__class__ = nn.Conv2d
    batch = {
        "flow_image": torch.rand(4, 3, 32, 32, dtype=torch.double),
        "apex_gray": torch.rand(4, 1, 32, 32, dtype=torch.double),
        "masked_apex": torch.rand(4, 1, 32, 32, dtype=torch.double),
    }
    labels = torch.tensor([0, 1, 2, 0])
    for net in (model, plain):
        nn.functional.cross_entropy(net(batch), labels).backward()
    for (name, a), b in zip(model.named_parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, msg=name)


def test_small_maps_train_under_bf16_autocast():
    conv = nn.Conv2d(8, 6, 3, 1, 1, bias=False)
    conv.__class__ = SmallMapConv2d
    x = torch.rand(2, 8, 2, 2, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = conv(x)
    y.float().sum().backward()
    assert conv.weight.grad.dtype == torch.float32
    assert x.grad.shape == x.shape
