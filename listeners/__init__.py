"""Listeners: transports only (GCN Kafka, VTP via Comet, directories).

A listener hands ``(source, topic, bytes, received_at)`` to a handler
(:data:`listeners.types.Handler`) that journals the bytes before anything else; only
once it has returned does the listener acknowledge its transport. The application
floor builds the handler (``mm_broker.app.listen_wiring``). Parsing lives in
:mod:`listeners.parsers`, one module per mission, chosen by an explicit registry.
"""
