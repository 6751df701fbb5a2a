"""coincidence: the maths of the join between optical alerts and multi-messenger regions.

Plain numpy and pandas, no Spark, Kafka or SQL (the wiring lives elsewhere):

* :mod:`coincidence.index` — ``ActiveRegions``: all active regions merged into one
  sorted boundary array with a CSR list of covering regions; ``ipix29``.
* :mod:`coincidence.rules` — ``Window`` per messenger, time window and newness.
* :mod:`coincidence.pchance` — chance-coincidence probability (definition and
  derivation in its docstring) and ``TransientRate``, the stream's rate of new
  transients.
* :mod:`coincidence.version` — ``EventMeta``, an event's active region version
  prepared for matching, and the figures of its candidates: credible level,
  density and searched area from the region's model (the one of :mod:`skymaps`),
  chance probability, separation.
* :mod:`coincidence.association` — the ``Association`` record.
* :mod:`coincidence.rank` — ranking of the candidates of one event version.
* :mod:`coincidence.alerts` — ``AlertBatch``, the ``AlertStore`` protocol and its
  in-memory implementation.
* :mod:`coincidence.engine` — ``CoincidenceEngine``: regions, updates, retractions and
  alerts in, associations out.
* :mod:`coincidence.times` — integer-nanosecond time representation.

The join benchmark is :mod:`benchmarks.join` (``mm-broker bench join``).
"""
