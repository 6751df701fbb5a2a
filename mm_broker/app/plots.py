"""Plots of the flow: one PNG per event with candidates in its last region version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mm_broker.core.models import Notice, Region, SkyMap
from publishers.plot import plot_event, region_info


def plot_events(folder: Path, records: list[dict[str, Any]],
                last_region: dict[str, tuple[int, Region, Notice]], retracted: set[str]) -> int:
    """Draw each event's last region with its candidates; return how many plots.

    Parameters
    ----------
    folder : Path
        Output folder (``<event>_r<version>.png``).
    records : list of dict
        Counterpart records of the run.
    last_region : dict
        Per event id, its last active ``(region_version, region, notice)``.
    retracted : set of str
        Retracted events (not drawn).
    """
    folder.mkdir(parents=True, exist_ok=True)
    done = 0
    for eid, (version, region, notice) in sorted(last_region.items()):
        cands = [r for r in records if r["event_id"] == eid and r["region_version"] == version
                 and r["status"] == "candidate"]
        if not cands or eid in retracted:
            continue
        fits = notice.localisation.data if isinstance(notice.localisation, SkyMap) else None
        name = eid.replace(":", "_").replace("/", "_")
        plot_event(region_info(region, fits), cands, folder / f"{name}_r{version}.png")
        done += 1
    return done
