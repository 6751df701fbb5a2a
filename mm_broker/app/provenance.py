"""The rule-set versions of a run: the one place they are assembled.

The ground floor's :class:`mm_broker.core.provenance.Provenance` takes the versions
of the rule sets as a mapping, because it imports nothing above it. The pipeline
names its own (:func:`fink_core.annotate.rule_versions`: quality cuts and first
classification), and the coincidence rules (:data:`coincidence.rules.RULES_VERSION`)
are added here, where both floors may be imported. Every caller of
:meth:`Provenance.from_settings` — ``run``, ``replay``, ``alerts archive``, the demo,
the benchmarks — passes :func:`rule_versions`, so the enriched alerts' ``prov_rules``
and the counterpart records' ``rule_versions`` name the same three.

Examples
--------
>>> sorted(k for k in rule_versions() if not k.startswith("fink_"))
['classification', 'coincidence', 'quality']
"""

from __future__ import annotations

from coincidence.rules import RULES_VERSION as COINCIDENCE_RULES_VERSION
from fink_core.annotate import rule_versions as pipeline_rule_versions


def rule_versions() -> dict[str, str]:
    """Rule set → version of every rule set a run applies.

    Returns
    -------
    dict
        ``quality`` (:data:`fink_core.quality.RULES_VERSION`), ``classification``
        (:data:`fink_core.classify.RULES_VERSION`) and ``coincidence``
        (:data:`coincidence.rules.RULES_VERSION`), and the ``fink_*`` versions of
        Fink's science modules (:func:`fink_core.fink_science.versions`).
    """
    return {**pipeline_rule_versions(), "coincidence": COINCIDENCE_RULES_VERSION}


__all__ = ["rule_versions"]
