"""Benchmarks of the coupling (``kolmo bench closures`` and ``kolmo bench coupled``); torch.

Offline measurement, not part of the live boundary: :mod:`coupling.bench.closures` times
artifacts as the solver calls them (the one place artifact latency is measured),
:mod:`coupling.bench.coupled` times whole online rollouts against the solver alone. The solver's
own benchmark is :mod:`kolmo.benchmark`.
"""

from coupling.bench.closures import ClosureTiming, bench_closures, machine_info, plot_bars, time_artifact, write_json
from coupling.bench.coupled import CoupledTiming, bench_coupled

__all__ = ["ClosureTiming", "CoupledTiming", "bench_closures", "bench_coupled", "machine_info", "plot_bars",
           "time_artifact", "write_json"]
