"""publishers: everything mm_broker sends out.

Modules, one concern each:

``schema``
    Avro schema files (``schemas/*.avsc``), names in the ``schema`` header,
    encoding, and :func:`~publishers.schema.check_backward_compatible`.
``records``
    Validation of outbound records (:class:`~publishers.records.InvalidRecord`).
``kafka``
    :class:`~publishers.kafka.CounterpartProducer`: topics, Avro, idempotent producer.
``consume``
    What a user runs to read the topics (``mm-broker consume``).
``voevent``
    Our VOEvents 2.0 (:class:`~publishers.voevent.VOEventAuthor`), the face of the
    three below.
``voevent_build``
    The counterpart and retraction documents and their IVORNs.
``voevent_check``
    :func:`~publishers.voevent_check.check`: valid VOEvent 2.0 before anything is sent.
``voeventparse_compat``
    voevent-parse, importable on Python 3.10 and later.
``vtp``
    VTP author client: submit VOEvents to Comet (:class:`~publishers.vtp.VTPClient`).
``publish``
    :class:`~publishers.publish.Publisher`, the one entry point of ``run`` and ``replay``.
``plot``
    :func:`~publishers.plot.plot_event`: the region and its candidates as a PNG.
``config``
    :class:`~publishers.config.PublishConfig`, the ``[publish]`` settings, typed.

The publishing benchmark is :mod:`benchmarks.publish` (``mm-broker bench publish``).
"""
