"""A-priori anatomy of the kolmogorov LES targets (issue 11; benchmarks/RESULTS.md §10).

For the test pairs of ``data-sgs-resolved.h5`` / ``data-sgs.h5`` (built by ``benchmarks/les_closure.sh``):

* how well tuned Smagorinsky / Leith tendencies on the stored coarse vorticity match each stored target
  (correlation, relative error as tuned and at the best constant factor);
* how much of ``sgs-resolved`` is the aliasing of the coarse model's own product: the coarse state keeps its
  modes N/3 <= |n| < N/2, so its 2/3-masked product is aliased on the resolved band. ``D = P_c adv_c(w) -
  P_c[adv(w) exact]`` (the exact product by zero-padding to 2N) is compared with the target.

Usage: python benchmarks/les_apriori.py [WORKDIR] [OUT.json]   (torch-free; seconds)
"""

from __future__ import annotations

import sys
from pathlib import Path

import h5py
import numpy as np

from coupling.eddy_viscosity import Leith, Smagorinsky
from kolmo import atomic
from kolmo.coarse import pad_hat, truncate_hat
from kolmo.equation import VorticityEquation
from kolmo.grid import Grid
from kolmo.simulation import CoarseState


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sum(a * b) / np.sqrt(np.sum(a * a) * np.sum(b * b)))


def main(work: Path, out: Path, c_s: float = 0.14, c_l: float = 0.25) -> dict:
    res: dict = {}
    for target in ("sgs-resolved", "sgs"):
        with h5py.File(work / f"data-{target}.h5") as h5:
            w = h5["test/vorticity"][()].astype(np.float64)
            target_h = h5["test/closure"][()].astype(np.float64)
            L = float(h5.attrs["L"])
        b, n = w.shape[0], w.shape[-1]
        gc, gf = Grid(n, L), Grid(2 * n, L)
        w_hat = np.fft.rfft2(w)
        for closure in (Smagorinsky(c_s), Leith(c_l)):
            h = closure(CoarseState(w_hat, 0, 0.0, gc, 0.01, omega=w))
            scale = float(np.sum(h * target_h) / np.sum(h * h))
            res[f"{target}/{closure.name}"] = {
                "coefficient": closure.coefficient, "correlation": corr(h, target_h),
                "rel_error_as_tuned": float(np.linalg.norm(h - target_h) / np.linalg.norm(target_h)),
                "rel_error_best_scale": float(np.linalg.norm(scale * h - target_h) / np.linalg.norm(target_h))}
        coarse = VorticityEquation(gc, 1e-3, 0.1, members=b, backend="numpy")
        padded = VorticityEquation(gf, 1e-3, 0.1, members=b, backend="numpy")
        exact = truncate_hat(padded.advection_hat(pad_hat(w_hat, 2 * n)), n)  # alias-free for |n| < N/2 inputs
        alias = np.fft.irfft2((coarse.advection_hat(w_hat) - exact) * gc.mask, s=(n, n))
        physical = target_h - alias
        for closure in (Smagorinsky(c_s), Leith(c_l)):  # the eddy viscosity against the non-aliasing remainder
            h = closure(CoarseState(w_hat, 0, 0.0, gc, 0.01, omega=w))
            res[f"{target}/{closure.name}"].update(correlation_with_target_minus_aliasing=corr(h, physical),
                                                   rms_tendency=float(h.std()))
        res[f"{target}/coarse-aliasing"] = {
            "rms_target": float(target_h.std()), "rms_aliasing": float(alias.std()), "correlation": corr(alias, target_h),
            "rel_residual": float(np.linalg.norm(target_h - alias) / np.linalg.norm(target_h))}
    atomic.write_json(out, res, indent=1)
    return res


if __name__ == "__main__":
    work = Path(sys.argv[1] if len(sys.argv) > 1 else "build/les")
    for k, v in main(work, Path(sys.argv[2] if len(sys.argv) > 2 else work / "apriori-anatomy.json")).items():
        print(k, {kk: round(vv, 4) for kk, vv in v.items()})
