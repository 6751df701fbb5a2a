"""The mutators: one module per format, and the table that picks them.

:mod:`fuzz.mutators.registry` names, family by family, the module that draws a case
(an explicit table, no discovery): :mod:`~fuzz.mutators.notice` for the notice
families (structured edits by :mod:`~fuzz.mutators.voevent` for XML and
:mod:`~fuzz.mutators.json_notice` for JSON, whose embedded sky maps
:mod:`~fuzz.mutators.skymap` damages), :mod:`~fuzz.mutators.avro` for Avro
containers and :mod:`~fuzz.mutators.confluent` for Confluent-framed bodies;
:mod:`~fuzz.mutators.binary` holds the byte-level mutations every family shares and
:mod:`~fuzz.mutators.common` the weighted choices. This face imports nothing.
"""
