"""Synthetic recovery: render a head with known beta, psi, pose, Delta_g and Delta_f, fit it from
the rendered frames (+ the true 2D landmarks) and recover the detailed vertices
(``expportrait.tracking.synthetic``, which ``benchmarks/tracking.py`` also scores schedules with)."""
import pytest
import torch

from expportrait.tracking.synthetic import synthetic_recovery


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These fits on one thread (their figures as recorded), the rest of the suite untouched."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_synthetic_recovery_of_detailed_vertices():
    r = synthetic_recovery()
    e_base, e_pers, corr = r["e_base"], r["e_pers"], r["corr"]
    print(f"synthetic: vertex error base {e_base:.2f} mm -> personalized {e_pers:.2f} mm; "
          f"offset correlation {corr:.2f}; PSNR {r['psnr_base']:.2f} -> {r['psnr_pers']:.2f}")
    assert e_pers < 3.5  # stated tolerance: mean face-vertex error (translation removed) below 3.5 mm
    assert e_pers < 0.9 * e_base  # the personalized stage recovers detail the base model cannot
    assert corr > 0.3  # fitted offsets correlate with the true Delta_g + Delta_f
    assert r["psnr_pers"] > r["psnr_base"] + 1.0
