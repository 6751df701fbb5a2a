"""Benchmarks of mm_broker: one module per benchmark, the table behind ``mm-broker bench``.

Application floor: a benchmark may import anything of the project, nothing of the
project imports a benchmark. :mod:`benchmarks.registry` is the one list of benchmarks
(name → run function, parameters and their defaults); ``mm-broker bench NAME --json``
runs one of them and prints one JSON object of figures with their units in the key
names and the machine's core count (:func:`benchmarks.common.machine`).

Modules: :mod:`~benchmarks.notices`, :mod:`~benchmarks.pipeline`,
:mod:`~benchmarks.join`, :mod:`~benchmarks.latency`, :mod:`~benchmarks.retro`,
:mod:`~benchmarks.publish`, :mod:`~benchmarks.soak` (one benchmark each);
:mod:`~benchmarks.common` (machine description, timing and percentiles, JSON output),
:mod:`~benchmarks.alert_stream` (copies of a real alert produced at a rate, the
counterpart topic followed), :mod:`~benchmarks.scratch_service` (``mm-broker run`` on
scratch resources), :mod:`~benchmarks.soak_sky` and :mod:`~benchmarks.procstat`
(helpers of the soak). ``benchmarks/README.md`` describes the figures.
"""
