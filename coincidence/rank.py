"""Ranking of the candidates of one event version, most promising first.

Rules, applied in this order (each breaks the ties of the previous ones):

1. ascending ``p_chance`` — the least likely to be chance first; a candidate without
   ``p_chance`` (no rate available) comes after every candidate with one;
2. quality flag ``True`` before ``False``;
3. ascending ``credible_level`` — deeper in the localisation first; ``None`` last;
4. earlier ``alert_time`` first;
5. ascending ``alert_id`` (text order) — only so that the order is total and
   deterministic.

Withdrawn associations are not ranked: :func:`rank_candidates` refuses them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from coincidence.association import Association, Status


def rank_key(assoc: Association) -> tuple[bool, float, bool, bool, float, datetime, str]:
    """Sort key implementing the ranking rules (smaller is more promising)."""
    no_p = assoc.p_chance is None or math.isnan(assoc.p_chance)
    no_level = assoc.credible_level is None or math.isnan(assoc.credible_level)
    return (
        no_p,
        0.0 if no_p or assoc.p_chance is None else assoc.p_chance,
        not assoc.quality,
        no_level,
        0.0 if no_level or assoc.credible_level is None else assoc.credible_level,
        assoc.alert_time,
        assoc.alert_id,
    )


def rank_candidates(candidates: Iterable[Association]) -> list[Association]:
    """Candidates sorted by :func:`rank_key`, with ``rank`` set to 1, 2, ….

    Parameters
    ----------
    candidates : iterable of Association
        Candidates of one event version.

    Returns
    -------
    list of Association
        New records (the inputs are frozen), most promising first.

    Raises
    ------
    ValueError
        If an association is withdrawn or the candidates mix event versions.
    """
    items = list(candidates)
    versions = {(a.event_id, a.region_version) for a in items}
    if len(versions) > 1:
        raise ValueError(f"candidates of several event versions: {sorted(versions)}")
    if any(a.status is not Status.CANDIDATE for a in items):
        raise ValueError("withdrawn associations are not ranked")
    ordered = sorted(items, key=rank_key)
    return [replace(a, rank=i) for i, a in enumerate(ordered, start=1)]
