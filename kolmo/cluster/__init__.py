"""Scale-out on Dask: ``kolmo dataset`` and ``kolmo run`` with ``--workers N`` or ``--scheduler ADDRESS``.

:mod:`kolmo.cluster.client` opens the Dask client (a local cluster of worker processes, or an
existing scheduler such as one dask-jobqueue starts on SLURM or PBS); :mod:`kolmo.cluster.dataset`
computes a dataset's batches on it and :mod:`kolmo.cluster.ensemble` an ensemble run's members.
Workers only compute and return arrays; the client alone writes the HDF5 file. Dask is the
optional extra ``pip install kolmo[distributed]``, imported only when workers are asked for.
"""

from kolmo.cluster.client import ClusterOptions, open_client, require_distributed

__all__ = ["ClusterOptions", "open_client", "require_distributed"]
