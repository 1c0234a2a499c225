"""Application workflows behind ``kolmo`` commands that chain several packages (e.g. ``kolmo demo``).

A workflow calls the public functions of ``kolmo``, ``closure`` and ``coupling`` in order; the
command module in ``cli/`` stays thin (parse, call one workflow function, print).
"""
