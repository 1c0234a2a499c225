r"""Resources before work: working-set memory and output size of a job, checked against the machine.

Torch-free, so every command can refuse a job that cannot fit before it allocates anything.

Memory model (bytes; :math:`B` members, :math:`N` grid points per side, :math:`r = 8` bytes per
float64 value). The solver holds, per member, the spectral state and the stepper's stages
(complex, :math:`N (N/2+1)` values of 16 bytes each, i.e. about one float64 field :math:`8 N^2`)
and the physical work fields of the advection term; shared across members are the wavenumber,
forcing and mask arrays:

.. math::  M_\text{run} = (a_s B + c)\, 8 N^2 + M_0 ,

with :math:`a_s` = :data:`STEPPER_FIELDS` (fields per member: 13 for ``cn-euler``/``cn-rk3``, 19
for ``ars343``), :math:`c = 8` shared fields and :math:`M_0` = :data:`FIXED_BYTES` (128 MiB: the
interpreter, numba, FFTW plans, HDF5 chunk caches). Measured with ``tracemalloc`` (peak of
``run_simulation`` at 128², B = 4, kolmogorov, cn-rk3: 7.46 MB = 56.9 fields of :math:`8 N^2`;
256², B = 2: 32.3 fields; 256², B = 1, dong2026: 20.2 fields; ars343 at 128², B = 4: 82.3
fields); ``tests/kolmo/test_resources.py`` re-measures one case.

``dataset`` adds the recorder (four fine fields per member for the closure target) and the
records of one batch (vorticity and closure, float32, :math:`2 \cdot 4\, m T N_c^2`), and at the end
the train-split statistics read both train datasets (:math:`2 \cdot 4\, P N_c^2`, :math:`P` pairs).

``train`` (torch; an upper-bound model, not measured per layer): the pairs in float32, held three
times (as read, normalised, on the device), :math:`3 \cdot 2 \cdot 4 P N^2`; activations and
gradients of a batch, :math:`4 \cdot b \cdot w \cdot N^2 \cdot 64` (64 float32 tensors of the FNO
width :math:`w` per sample); and for ``--reg ga`` the diffusion potentials, :math:`8 P L` with
:math:`L` landmarks (:math:`8 P^2` times 4 without landmarks: the kernel, its normalisations and
the potentials).

Output sizes: a run file stores float32 snapshots :math:`4 T B N^2` plus float64 spectra
:math:`2 \cdot 8 T B K` and restart state :math:`16 B N (N/2+1)`; a dataset stores
:math:`2 \cdot 4 P_\text{all} N_c^2`.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from kolmo.errors import ResourceError

__all__ = ["STEPPER_FIELDS", "SHARED_FIELDS", "FIXED_BYTES", "Estimate", "run_memory", "dataset_memory",
           "train_memory", "run_output_bytes", "dataset_output_bytes", "available_memory", "free_disk",
           "require_memory", "require_disk", "human"]

STEPPER_FIELDS = {"cn-euler": 13, "cn-rk3": 13, "ars343": 19}
"""Float64 fields ``8 N²`` held per member by each time stepper (measured, rounded up)."""
SHARED_FIELDS = 8
"""Float64 fields ``8 N²`` shared by all members (wavenumbers, masks, forcing)."""
FIXED_BYTES = 128 * 2**20
"""Grid-independent overhead: interpreter, numba, FFTW plans, HDF5 caches."""
DISK_MARGIN = 1.05
"""Free disk must exceed the expected output by this factor (HDF5 metadata, chunk padding)."""


@dataclass(frozen=True)
class Estimate:
    """A job's estimated working set (bytes) and what it is made of, in words."""

    bytes: int
    what: str

    def __str__(self) -> str:
        return f"{human(self.bytes)} ({self.what})"


def human(n: float) -> str:
    """``n`` bytes as ``"1.5 GiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def _field(n: int) -> int:
    return 8 * n * n


def run_memory(n: int, members: int, stepper: str = "cn-rk3") -> Estimate:
    """Working set of a solver run on ``n``² with ``members`` members (see the module docstring)."""
    a = STEPPER_FIELDS.get(stepper, max(STEPPER_FIELDS.values()))
    total = (a * members + SHARED_FIELDS) * _field(n) + FIXED_BYTES
    return Estimate(int(total), f"{n}² grid × {members} member(s), {stepper}: ({a}·B + {SHARED_FIELDS}) "
                                f"fields of 8·N² bytes + {human(FIXED_BYTES)}")


def dataset_memory(fine: int, coarse: int, members_per_batch: int, records: int, pairs_train: int,
                   stepper: str = "cn-rk3") -> Estimate:
    """Working set of ``kolmo dataset``: the fine run of one batch, its recorder and records, and
    the train statistics at the end (see the module docstring)."""
    run = run_memory(fine, members_per_batch, stepper).bytes
    recorder = 4 * members_per_batch * _field(fine)
    batch_records = 2 * 4 * members_per_batch * records * coarse * coarse
    finalize = 2 * 4 * pairs_train * coarse * coarse
    total = run + recorder + max(batch_records, finalize)
    return Estimate(int(total), f"fine {fine}² run of {members_per_batch} member(s) + records "
                                f"{records}×{coarse}² + train statistics of {pairs_train} pairs")


def train_memory(pairs: int, grid: int, batch: int, width: int = 40, ga_landmarks: Optional[int] = None,
                 ga: bool = False) -> Estimate:
    """Working set of ``kolmo train`` (upper-bound model; see the module docstring)."""
    data = 3 * 2 * 4 * pairs * grid * grid
    activations = 4 * batch * width * grid * grid * 64
    potentials = 0
    if ga:
        potentials = 8 * pairs * ga_landmarks * 4 if ga_landmarks else 4 * 8 * pairs * pairs
    total = data + activations + potentials + FIXED_BYTES
    what = f"{pairs} pairs on {grid}², batch {batch}, width {width}" + (
        f", GA potentials ({'exact' if not ga_landmarks else f'{ga_landmarks} landmarks'})" if ga else "")
    return Estimate(int(total), what)


def run_output_bytes(n: int, members: int, snapshots: int, shells: Optional[int] = None) -> int:
    """Size of a run file: float32 snapshots, float64 energy/enstrophy spectra, restart state."""
    k = shells if shells is not None else n // 2 + 1
    return int(snapshots * members * (4 * n * n + 2 * 8 * k) + 16 * members * n * (n // 2 + 1))


def dataset_output_bytes(coarse: int, pairs: int) -> int:
    """Size of a dataset file: float32 coarse vorticity and closure of every pair."""
    return int(2 * 4 * pairs * coarse * coarse)


def _cgroup_available() -> Optional[int]:
    """Memory left under a cgroup v2 limit (containers), or ``None`` without one."""
    root = Path("/sys/fs/cgroup")
    try:
        limit = (root / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(0, int(limit) - int((root / "memory.current").read_text().strip()))
    except (OSError, ValueError):
        return None


def available_memory() -> Optional[int]:
    """Memory a new job can use (bytes): ``MemAvailable`` of ``/proc/meminfo`` (else free pages from
    ``os.sysconf``), capped by a cgroup limit; ``None`` when it cannot be read."""
    avail: Optional[int] = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError, IndexError):
        avail = None
    if avail is None:
        try:
            avail = int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            avail = None
    cg = _cgroup_available()
    if cg is not None:
        avail = cg if avail is None else min(avail, cg)
    return avail


def free_disk(path: str | os.PathLike) -> Optional[int]:
    """Free bytes on the file system that would hold ``path`` (its nearest existing ancestor)."""
    p = Path(path).absolute()
    for candidate in (p, *p.parents):
        if candidate.exists():
            try:
                return shutil.disk_usage(candidate).free
            except OSError:
                return None
    return None


def require_memory(estimate: Estimate, job: str) -> None:
    """Raise :class:`~kolmo.errors.ResourceError` when ``estimate`` exceeds the available memory."""
    avail = available_memory()
    if avail is not None and estimate.bytes > avail:
        raise ResourceError(f"{job} needs about {estimate}, but only {human(avail)} of memory is available; "
                            "use a smaller grid, fewer members or a smaller batch")


def require_disk(size: int, path: str | os.PathLike, job: str) -> None:
    """Raise :class:`~kolmo.errors.ResourceError` when ``size`` bytes (with a margin) do not fit on
    the disk that would hold ``path``."""
    free = free_disk(path)
    if free is not None and size * DISK_MARGIN > free:
        raise ResourceError(f"{job} writes about {human(size)} to {path}, but only {human(free)} is free on that "
                            "disk; free space or choose another output folder")
