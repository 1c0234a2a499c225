"""Evaluation of runs against a reference (torch-free): :mod:`kolmo.evaluation.les` (LES vs DNS statistics)."""
