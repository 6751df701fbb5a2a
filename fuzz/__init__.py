"""Fuzzing of mm_broker's parsers, seeded from the real files of the shared data.

The real notices (VOEvent XML, GCN JSON, ``igwn.gwalert`` with base64 sky maps) and
Avro alerts are mutated, every case is fed to the function a daemon would call
(:func:`listeners.parsers.parse` then :func:`skymaps.region_for`,
:func:`fink_core.decode.decode_avro` then :func:`fink_core.pipeline.enrich`), and the
outcomes are counted. Any exception other than the named rejections is a bug: it
would stop a listener or a streaming micro-batch.

Modules: :mod:`fuzz.corpus` (the seed files), :mod:`fuzz.mutators` (one module per
format, and the table that picks them), :mod:`fuzz.case` (a case and its
reproduction command), :mod:`fuzz.targets` (feeding a case to its parser),
:mod:`fuzz.oracles` (what counts as an acceptable outcome), :mod:`fuzz.harness` (the
loop and the counts), :mod:`fuzz.run` (the command line), :mod:`fuzz.formats`
(Avro container headers, paths into documents). This face imports nothing.

Run ``python -m fuzz.run --cases 100000 --seed 1`` (``make fuzz``); the quick run
of the test suite is ``tests/fuzz/test_fuzz_quick.py``.
"""
