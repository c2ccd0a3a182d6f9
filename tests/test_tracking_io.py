import numpy as np
import pytest
import torch

from expportrait.detection.landmarks import interpolate_missing
from expportrait.errors import UserError
from expportrait.tracking.io import HeadFit, load_fit, save_fit


def _fit(F=5, N=30):
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    return HeadFit(shape=r(4), static_offset=r(N, 3), expression=r(F, 3), jaw=r(F, 3), rotation=r(F, 3),
                   translation=r(F, 3), camera=r(F, 4), dynamic_offset=r(F, N, 3) * 1e-3, albedo=r(N, 3),
                   sh=r(F, 9, 3), valid=torch.tensor([True, False, True, True, True]),
                   landmarks68_2d=r(F, 68, 2), meta={"head": "bfm", "image_size": [10, 12], "fps": 25.0})


def test_fit_roundtrip(tmp_path):
    fit = _fit()
    p = save_fit(fit, tmp_path / "fit.safetensors")
    back = load_fit(p)
    for k, v in fit.tensors().items():
        w = getattr(back, k)
        tol = 1e-3 * v.abs().max().item() if k == "dynamic_offset" else 0  # stored as float16
        assert w.shape == v.shape and torch.allclose(w.float(), v.float(), atol=tol), k
    assert back.meta == fit.meta and back.image_size == (10, 12)
    sub = back.frames(slice(1, 3))
    assert sub.num_frames == 2 and sub.static_offset.shape == fit.static_offset.shape


def test_fit_bad_files(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_fit(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(UserError, match="not a readable fit"):
        load_fit(junk)
    from safetensors.torch import save_file
    other = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(2)}, str(other))
    with pytest.raises(UserError, match="not an expportrait fit"):
        load_fit(other)


def test_no_partial_file_on_failure(tmp_path):
    fit = _fit()
    fit.meta["bad"] = object()  # not JSON-serialisable -> save fails
    with pytest.raises(TypeError):
        save_fit(fit, tmp_path / "fit.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_interpolate_missing_frames():
    x = np.arange(6, dtype=np.float32)[:, None].repeat(2, 1) * 2.0
    valid = np.array([False, True, False, False, True, False])
    x_bad = x.copy()
    x_bad[~valid] = -100
    y = interpolate_missing(x_bad, valid)
    np.testing.assert_allclose(y[1:5], x[1:5])  # linear inside
    assert y[0, 0] == x[1, 0] and y[5, 0] == x[4, 0]  # held at the ends
