"""LPIPS with synthetic weight files written in the torchvision / lpips formats (metrics/lpips.py)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from expportrait.errors import UserError
from expportrait.metrics.lpips import LPIPS, SCALE, SHIFT

# torchvision's parameter names (models.alexnet / models.vgg16 `features`), written out independently
TV_CONVS = {"alex": [0, 3, 6, 8, 10], "vgg": [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]}
ALEX_SHAPES = [(64, 3, 11, 11), (192, 64, 5, 5), (384, 192, 3, 3), (256, 384, 3, 3), (256, 256, 3, 3)]
VGG_CH = [3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
HEAD_CH = {"alex": [64, 192, 384, 256, 256], "vgg": [64, 128, 256, 512, 512]}


def _backbone_sd(net, seed=0, classifier=True):
    g = torch.Generator().manual_seed(seed)
    shapes = ALEX_SHAPES if net == "alex" else [(VGG_CH[i + 1], VGG_CH[i], 3, 3) for i in range(13)]
    sd = {}
    for idx, shp in zip(TV_CONVS[net], shapes):
        fan_in = shp[1] * shp[2] * shp[3]
        sd[f"features.{idx}.weight"] = torch.randn(shp, generator=g) * (2.0 / fan_in) ** 0.5
        sd[f"features.{idx}.bias"] = torch.randn(shp[0], generator=g) * 0.01
    if classifier:  # present in real checkpoints and ignored (tiny stand-in here)
        sd["classifier.6.weight"] = torch.zeros(10, 4)
        sd["classifier.6.bias"] = torch.zeros(10)
    return sd


def _heads_sd(net, seed=1):
    g = torch.Generator().manual_seed(seed)
    return {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=g) for i, c in enumerate(HEAD_CH[net])}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("lpips")
    out = {}
    for net in ("alex", "vgg"):
        torch.save(_backbone_sd(net), d / f"{net}_backbone.pth")
        torch.save(_heads_sd(net), d / f"{net}_heads.pth")
        out[net] = (d / f"{net}_backbone.pth", d / f"{net}_heads.pth")
    return out


def test_parameter_names_match_torchvision():
    for net in ("alex", "vgg"):
        keys = set(LPIPS(net).features.state_dict())
        want = {f"{i}.{p}" for i in TV_CONVS[net] for p in ("weight", "bias")}
        assert keys == want


def _reference_alex_lpips(a, b, bsd, hsd):
    """Independent functional LPIPS-alex from the raw state dicts."""
    shift, scale = torch.tensor(SHIFT).view(1, 3, 1, 1), torch.tensor(SCALE).view(1, 3, 1, 1)

    def feats(x):
        x = (x - shift) / scale
        w = lambda i: (bsd[f"features.{i}.weight"], bsd[f"features.{i}.bias"])  # noqa: E731
        h1 = F.relu(F.conv2d(x, *w(0), stride=4, padding=2))
        h2 = F.relu(F.conv2d(F.max_pool2d(h1, 3, 2), *w(3), padding=2))
        h3 = F.relu(F.conv2d(F.max_pool2d(h2, 3, 2), *w(6), padding=1))
        h4 = F.relu(F.conv2d(h3, *w(8), padding=1))
        h5 = F.relu(F.conv2d(h4, *w(10), padding=1))
        return [h1, h2, h3, h4, h5]

    total = 0
    for k, (fa, fb) in enumerate(zip(feats(a), feats(b))):
        fa = fa / (fa.norm(dim=1, keepdim=True) + 1e-10)
        fb = fb / (fb.norm(dim=1, keepdim=True) + 1e-10)
        total = total + (((fa - fb) ** 2) * hsd[f"lin{k}.model.1.weight"]).sum(1).mean((1, 2))
    return total


def test_alex_matches_functional_reference(files):
    model = LPIPS.from_files(*files["alex"], net="alex")
    g = torch.Generator().manual_seed(3)
    a, b = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1, torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    ref = _reference_alex_lpips(a, b, torch.load(files["alex"][0], weights_only=True),
                                torch.load(files["alex"][1], weights_only=True))
    torch.testing.assert_close(model(a, b), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_identity_positive_symmetric(files, net):
    model = LPIPS.from_files(*files[net], net=net)
    rng = np.random.default_rng(0)
    shape = (3, 64, 64, 3) if net == "alex" else (2, 32, 32, 3)  # VGG is ~20x heavier
    x = rng.integers(0, 256, shape, dtype=np.uint8)
    y = rng.integers(0, 256, shape, dtype=np.uint8)
    same = model.video(x, x)
    assert np.abs(same).max() < 1e-6
    d_xy, d_yx = model.video(x, y), model.video(y, x)
    assert (d_xy > 1e-4).all()
    np.testing.assert_allclose(d_xy, d_yx, rtol=1e-5)
    # a mildly perturbed copy is closer than an unrelated image
    near = np.clip(x.astype(int) + rng.integers(-8, 9, x.shape), 0, 255).astype(np.uint8)
    assert (model.video(x, near) < d_xy).all()


def test_wrong_files_are_user_errors(files, tmp_path):
    alex_bb, alex_heads = files["alex"]
    with pytest.raises(UserError, match="not found"):
        LPIPS.from_files(tmp_path / "missing.pth", alex_heads)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"definitely not a checkpoint")
    with pytest.raises(UserError, match="cannot load"):
        LPIPS.from_files(junk, alex_heads)
    with pytest.raises(UserError, match="not a"):  # heads given as the backbone
        LPIPS.from_files(alex_heads, alex_heads)
    with pytest.raises(UserError, match="heads"):  # vgg heads with the alex trunk
        LPIPS.from_files(alex_bb, files["vgg"][1], net="alex")
    with pytest.raises(UserError, match="not a torchvision vgg|missing"):  # alex trunk for vgg
        LPIPS.from_files(alex_bb, files["vgg"][1], net="vgg")
    sd = _backbone_sd("alex")
    sd["features.3.weight"] = sd["features.3.weight"][:, :32]
    bad = tmp_path / "bad_shape.pth"
    torch.save(sd, bad)
    with pytest.raises(UserError, match="shape"):
        LPIPS.from_files(bad, alex_heads)
    nontensor = tmp_path / "nontensor.pth"
    torch.save({"features.0.weight": 1}, nontensor)
    with pytest.raises(UserError, match="tensors"):
        LPIPS.from_files(nontensor, alex_heads)
    with pytest.raises(UserError, match="at least 32x32"):
        LPIPS.from_files(alex_bb, alex_heads).video(np.zeros((1, 16, 16, 3)), np.zeros((1, 16, 16, 3)))
    with pytest.raises(UserError, match="unknown LPIPS net"):
        LPIPS("squeeze")
