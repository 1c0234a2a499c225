"""The C++ examples (examples/cpp) build against the wheel's libtorch and run an artifact: TorchScript
(run_closure) and an AOTInductor package (run_closure_aoti).

Skipped, with the reason, when cmake or a C++ compiler is missing. The build folder is cached
under $KOLMO_CACHE_DIR keyed by the sources' hash, so only the first run pays the ~30 s compile.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "examples" / "cpp"

pytestmark = pytest.mark.skipif(
    shutil.which("cmake") is None or (shutil.which("c++") is None and shutil.which("g++") is None),
    reason="cmake and a C++ compiler are needed to build examples/cpp against libtorch",
)


class ContractClosure(torch.nn.Module):
    """A minimal artifact obeying the closure contract: H = −w ω + 0.01 · upsampled noise."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(0.5))

    def noise_shape(self, batch: int) -> List[int]:
        return [batch, 1, 8, 8]

    def sample(self, omega: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        up = torch.nn.functional.interpolate(noise, size=[omega.shape[-2], omega.shape[-1]], mode="nearest")
        return -self.w * omega + 0.01 * up[:, 0]

    def forward(self, omega: torch.Tensor) -> torch.Tensor:
        return self.sample(omega, torch.randn(self.noise_shape(omega.shape[0]), dtype=omega.dtype,
                                              device=omega.device))


def _build(host: str = "run_closure") -> Path:
    digest = hashlib.sha256(b"".join((SRC / f).read_bytes() for f in ("CMakeLists.txt", "run_closure.cpp",
                                                                         "run_closure_aoti.cpp")))
    digest.update(torch.__version__.encode())
    cache = Path(os.environ.get("KOLMO_CACHE_DIR", Path.home() / ".cache" / "kolmo")) / f"cpp-{digest.hexdigest()[:12]}"
    exe = cache / host
    if exe.exists():
        return exe
    cfg = subprocess.run(["cmake", "-S", str(SRC), "-B", str(cache), "-DCMAKE_BUILD_TYPE=Release",
                          f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}"],
                         capture_output=True, text=True)
    if cfg.returncode != 0:
        pytest.skip(f"cmake could not configure against the wheel's libtorch: {cfg.stderr[-500:]}")
    build = subprocess.run(["cmake", "--build", str(cache), "-j2"], capture_output=True, text=True)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    return exe


def test_cpp_host_loads_an_artifact_and_calls_it(tmp_path: Path) -> None:
    path = tmp_path / "closure.pt"
    torch.jit.save(torch.jit.script(ContractClosure()), str(path),
                   _extra_files={"metadata.json": json.dumps({"format": "kolmo-closure", "grid": 32})})
    exe = _build()
    run = subprocess.run([str(exe), str(path), "32", "3"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "output [3, 32, 32] finite yes" in run.stdout
    # the field is sin(2πx)cos(2πy), so the deterministic part −0.5 ω has zero mean and rms 0.25
    rms = float(run.stdout.split("rms")[1])
    assert abs(rms - 0.25) < 0.02


def test_cpp_host_reports_a_missing_artifact_clearly(tmp_path: Path) -> None:
    exe = _build()
    run = subprocess.run([str(exe), str(tmp_path / "nope.pt"), "32"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "cannot load closure artifact" in run.stderr


def test_cpp_host_runs_an_aoti_package_at_batch_3_and_1_like_python(aoti_closure) -> None:
    """run_closure_aoti draws its noise with torch::manual_seed(0) on sin(2πx)cos(2πy): the same call
    from Python through the one loader gives the same sum."""
    exe = _build("run_closure_aoti")
    run = subprocess.run([str(exe), str(aoti_closure.pt2), "3"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "grid 16, noise_dims [-1, 1, 4, 4]" in run.stdout
    assert "output [3, 16, 16] and [1, 16, 16] finite yes" in run.stdout
    from coupling.artifact import load_artifact

    module = load_artifact(aoti_closure.pt2).module
    x = torch.arange(16, dtype=torch.float32) / 16.0
    gy, gx = torch.meshgrid(x, x, indexing="ij")
    omega = (torch.sin(2 * torch.pi * gx) * torch.cos(2 * torch.pi * gy)).expand(3, 16, 16).contiguous()
    torch.manual_seed(0)
    with torch.inference_mode():
        h = module.sample(omega, torch.randn(module.noise_shape(3)))
    assert float(run.stdout.split("sum ")[1].split()[0]) == pytest.approx(float(h.sum()), rel=1e-4, abs=1e-3)
