"""A real coincidence record (two circles, made by the maths) for the schema tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from coincidence.notices import NoticeSide, evaluate, pair_rules
from coincidence.notices_record import coincidence_record
from mm_broker.core.config import load
from mm_broker.core.models import Circle
from skymaps.circles import region_from_circle


def coincidence_sample() -> dict[str, Any]:
    """A GW x GRB coincidence record, 1.7 s apart."""
    t0 = datetime(2024, 1, 15, 12, tzinfo=UTC)
    gw = NoticeSide("LVK:S1", "GW", "LVK", "H1,L1", "INITIAL", "observation", t0, 2, 1,
                    region_from_circle(Circle(10.0, 0.0, 5.0, 0.9)), far_hz=1e-9)
    grb = NoticeSide("Fermi-GBM:1", "GRB", "Fermi", "GBM", "FERMI_GBM_GND_POS", "observation",
                     t0 + timedelta(seconds=1.7), 3, 1,
                     region_from_circle(Circle(12.0, 0.0, 8.0, 0.68)))
    c = evaluate(gw, grb, pair_rules(load(environ={}).coincidence_notices))
    assert c is not None
    return coincidence_record(c, {"mm_broker_version": "0", "config_hash": "h",
                                  "rule_versions": {"coincidence": "1"}})
