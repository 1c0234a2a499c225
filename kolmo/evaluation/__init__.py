"""Offline analysis of solver output (no torch): how good is a coarse run against a truth?

Modules (one concept each):

- :mod:`kolmo.evaluation.online` — :func:`evaluate_online` (``kolmo evaluate online``): an online
  closure run vs a truth and baselines, written as a report folder; its steps, one function each.
- :mod:`kolmo.evaluation.sources` — run files and dataset trajectories on one grid and one clock
  (:func:`parse_reference`, :func:`align_times`).
- :mod:`kolmo.evaluation.accumulate` — per-source metrics gathered one aligned time at a time.
- :mod:`kolmo.evaluation.scores` — trajectory and statistics blocks, similarity to a baseline.
- :mod:`kolmo.evaluation.figures` — the PNG figures (matplotlib, the optional extra
  ``kolmo[plots]``, imported lazily).
- :mod:`kolmo.evaluation.report` — the Markdown report and the report folder.
- :mod:`kolmo.evaluation.les` — LES runs vs a (coarse-grained) DNS by statistics, no matching
  trajectory needed (``kolmo evaluate les``); its figures in :mod:`kolmo.evaluation.les_figures`.

Further analyses belong here as modules of their own. The metrics themselves live in
:mod:`kolmo.metrics`.
"""

from kolmo.evaluation.online import DEFAULT_HORIZONS, NoOverlapError, evaluate_online
from kolmo.evaluation.sources import align_times, parse_reference

__all__ = ["evaluate_online", "NoOverlapError", "DEFAULT_HORIZONS", "align_times", "parse_reference"]
