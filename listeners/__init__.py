"""Listeners: transports only (GCN Kafka, VTP via Comet, directories).

A listener hands ``(source, topic, bytes, received_at)`` to
:func:`mm_broker.app.ingest.ingest`, which journals the bytes before anything else;
only then does the listener acknowledge its transport. Parsing lives in
:mod:`listeners.parsers`, one module per mission, chosen by an explicit registry.
"""
