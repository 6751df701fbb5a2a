"""Fuzzing of mm_broker's parsers, seeded from the real files of the shared data.

:mod:`fuzz.run` mutates real notices (VOEvent XML, GCN JSON, ``igwn.gwalert`` with
base64 sky maps) and real Avro alerts, feeds every case to the function a daemon
would call (:func:`listeners.parsers.parse` then :func:`skymaps.region_for`,
:func:`fink_core.decode.decode_avro` then :func:`fink_core.decode.flatten`), and
counts the outcomes. Any exception other than the named rejections is a bug: it
would stop a listener or a streaming micro-batch.

Run ``python -m fuzz.run --cases 100000 --seed 1`` (``make fuzz``); the quick run
of the test suite is ``tests/fuzz/test_fuzz_quick.py``.
"""
