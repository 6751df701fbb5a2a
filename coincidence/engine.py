"""The coincidence engine: regions and alerts in, associations out.

A pure, in-memory, deterministic state machine that the replay command and the
streaming job drive. It knows nothing of Spark, Kafka or SQL: alerts come as pandas
DataFrames (or :class:`~coincidence.alerts.AlertBatch`), regions as
:class:`~mm_broker.core.models.Region`, and every call returns the list of
:class:`~coincidence.association.Association` records it *newly* emits.

Events and versions
-------------------
* :meth:`CoincidenceEngine.add_region` makes a region version active for an event.
  For a new event it retro-matches the alerts already seen (late notice); for a
  known event with a higher version it acts as :meth:`~CoincidenceEngine.supersede`.
* :meth:`CoincidenceEngine.supersede` replaces the active version: every alert that
  matches the new version is emitted as a candidate of the new version (identity
  ``(event_id, new_version, alert_id)``), and every candidate of the old version that
  does not match the new one is emitted again with status ``withdrawn``.
* :meth:`CoincidenceEngine.retract` withdraws every current candidate of the event;
  the event stays retracted (later versions are ignored).
* A version already seen, or older than the active one, changes nothing.

Output identity
---------------
A record is identified by ``(event_id, region_version, alert_id)`` and a status. Each
identity is emitted at most once as ``candidate`` and at most once, afterwards, as
``withdrawn``: re-processing an alert or re-adding a region version emits nothing.
``rank`` is the candidate's rank among the candidates of its event version known at
emission; :meth:`CoincidenceEngine.candidates` gives the current full ranking.

Figures
-------
Each candidate carries the figures of :func:`coincidence.version.associations`:
credible level and density from the region's model (the one of :mod:`skymaps`),
searched area, chance probability, separation for circles.

Test events
-----------
The event's :class:`~mm_broker.core.models.Role` is carried into every association
(``Association.role``, ``Association.is_test``): publishers route ``test`` ones to
``mm.test.*`` only.

Time
----
The engine reads no clock. Its notion of "now" (for the rate of new transients) is the
latest alert time it has seen; everything else depends only on the inputs and their
order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np
import numpy.typing as npt
import pandas as pd

from coincidence.alerts import AlertBatch, AlertStore, InMemoryAlertStore
from coincidence.association import Association, Status
from coincidence.distance_figures import HostSearch
from coincidence.index import ActiveRegions, RegionEntry
from coincidence.pchance import RateEstimate, RateSource, TransientRate
from coincidence.rank import rank_candidates
from coincidence.rules import Window, pair_time_mask, time_mask, window_for
from coincidence.times import from_ns, seconds_to_ns
from coincidence.version import ActiveVersion, EventMeta, associations, prepare
from mm_broker.core.models import Messenger, Region

__all__ = ["CoincidenceEngine", "EventMeta"]


@dataclass(eq=False)
class _Event:
    versions_seen: set[int] = field(default_factory=set)
    active: ActiveVersion | None = None
    retracted: bool = False


class CoincidenceEngine:
    """In-memory coincidence engine (see the module docstring).

    Parameters
    ----------
    windows : mapping of Messenger to Window
        Time rules per messenger, built by the caller from the settings
        (``[coincidence]``, the one place of the defaults); :meth:`add_region` may
        override the window of one region version.
    store : AlertStore, optional
        Where past alerts are kept for retro-matching (default: in memory).
    rate : RateSource, optional
        Rate of new transients for ``p_chance`` (default: :class:`TransientRate`
        measured from the alerts the engine processes).
    table_order : int
        Order of the acceleration table of :class:`ActiveRegions`.
    hosts : HostSearch, optional
        Galaxy catalogue for the host figures of GW candidates
        (:mod:`coincidence.distance_figures`); without it, GW maps with a distance
        ansatz still give the line-of-sight distance figures.
    """

    def __init__(
        self,
        *,
        windows: Mapping[Messenger, Window],
        store: AlertStore | None = None,
        rate: RateSource | None = None,
        table_order: int = 8,
        hosts: HostSearch | None = None,
    ) -> None:
        self._hosts = hosts
        self._store: AlertStore = InMemoryAlertStore() if store is None else store
        self._rate: RateSource = TransientRate() if rate is None else rate
        self._windows = windows
        self._table_order = table_order
        self._events: dict[str, _Event] = {}
        self._emitted: set[tuple[str, int, str, Status]] = set()
        self._index: tuple[ActiveRegions, list[ActiveVersion]] | None = None
        # per region index: t0, before, after, newness (ns), aligned with the index
        self._index_rules: tuple[npt.NDArray[np.int64], ...] = ()
        self._now_ns: int | None = None

    # ------------------------------------------------------------------ state

    @property
    def now(self) -> datetime | None:
        """Latest alert time seen (the engine's clock), or ``None`` before any alert."""
        return None if self._now_ns is None else from_ns(self._now_ns)

    def candidates(self, event_id: str) -> list[Association]:
        """Current candidates of the event's active version, ranked now."""
        event = self._events.get(event_id)
        if event is None or event.active is None:
            return []
        return rank_candidates(event.active.candidates.values())

    def active_versions(self) -> dict[str, int]:
        """Active region version of every event that has one."""
        return {
            eid: ev.active.region_version
            for eid, ev in sorted(self._events.items())
            if ev.active is not None
        }

    # ---------------------------------------------------------------- regions

    def add_region(
        self,
        meta: EventMeta,
        region_version: int,
        region: Region,
        window: Window | None = None,
    ) -> list[Association]:
        """Make a region version active and retro-match the alerts already seen.

        Parameters
        ----------
        meta : EventMeta
            Event and notice facts (role included).
        region_version : int
            Version of the region within the event (higher is newer).
        region : Region
        window : Window, optional
            Time rules (default: the messenger's window).

        Returns
        -------
        list of Association
            New candidates, and for an update the withdrawn ones (see
            :meth:`supersede`). Empty for a duplicate, stale or retracted version.
        """
        event = self._events.get(meta.event_id)
        if event is not None and event.active is not None:
            return self.supersede(meta, region_version, region, window)
        event = self._events.setdefault(meta.event_id, _Event())
        if event.retracted or region_version in event.versions_seen:
            return []
        version = self._prepare(meta, region_version, region, window)
        event.versions_seen.add(region_version)
        event.active = version
        self._index = None
        return self._retro_match(version)

    def supersede(
        self,
        meta: EventMeta,
        region_version: int,
        region: Region,
        window: Window | None = None,
    ) -> list[Association]:
        """Replace the event's active version by a newer one.

        Returns
        -------
        list of Association
            First the candidates of the old version that the new one does not keep,
            with status ``withdrawn`` (by ``alert_id``), then the candidates of the
            new version (by rank). Empty when the version was seen already or is not
            newer than the active one, or the event is retracted.

        Raises
        ------
        KeyError
            If the event has no active version (use :meth:`add_region`).
        """
        event = self._events.get(meta.event_id)
        if event is None or (event.active is None and not event.retracted):
            raise KeyError(f"event {meta.event_id!r} has no active region to supersede")
        if event.retracted or event.active is None:
            return []
        old = event.active
        if region_version in event.versions_seen or region_version <= old.region_version:
            event.versions_seen.add(region_version)
            return []
        new = self._prepare(meta, region_version, region, window)
        event.versions_seen.add(region_version)
        event.active = new
        self._index = None
        added = self._retro_match(new)
        withdrawn = [
            self._withdraw(assoc)
            for alert_id, assoc in sorted(old.candidates.items())
            if alert_id not in new.candidates
        ]
        return [a for a in withdrawn if a is not None] + added

    def retract(self, event_id: str) -> list[Association]:
        """Withdraw every current candidate of the event; ignore its later versions.

        Returns
        -------
        list of Association
            The withdrawn records (by ``alert_id``); empty if already retracted.
        """
        event = self._events.setdefault(event_id, _Event())
        if event.retracted:
            return []
        event.retracted = True
        active, event.active = event.active, None
        self._index = None
        if active is None:
            return []
        withdrawn = [self._withdraw(a) for _, a in sorted(active.candidates.items())]
        return [a for a in withdrawn if a is not None]

    # ----------------------------------------------------------------- alerts

    def process_alerts(self, alerts: pd.DataFrame | AlertBatch) -> list[Association]:
        """Match a batch of alerts against the active regions.

        Parameters
        ----------
        alerts : pandas.DataFrame or AlertBatch
            Columns of :data:`coincidence.alerts.ALERT_COLUMNS`. Alerts already seen
            (by ``alert_id``) are skipped.

        Returns
        -------
        list of Association
            New candidates, grouped by event version (by event id, then version) and
            ranked within each group.
        """
        batch = alerts if isinstance(alerts, AlertBatch) else AlertBatch.from_frame(alerts)
        batch = self._store.add(batch)
        if len(batch) == 0:
            return []
        latest = int(batch.time_ns.max())
        self._now_ns = latest if self._now_ns is None else max(self._now_ns, latest)
        self._rate.observe(batch.time_ns, batch.ra, batch.dec, batch.object_id, batch.first_ns)
        index, versions = self._active_index()
        if len(versions) == 0:
            return []
        alert_idx, region_idx = index.match(batch.ipix)
        # Time window and newness over all pairs at once; _associate checks again.
        rules = self._index_rules
        keep = pair_time_mask(
            batch.time_ns[alert_idx],
            batch.first_ns[alert_idx],
            rules[0][region_idx],
            rules[1][region_idx],
            rules[2][region_idx],
            rules[3][region_idx],
        )
        alert_idx, region_idx = alert_idx[keep], region_idx[keep]
        if len(alert_idx) == 0:
            return []
        rate = self._rate.estimate(self._now_ns)
        order = np.argsort(region_idx, kind="stable")
        alert_idx, region_idx = alert_idx[order], region_idx[order]
        cuts = np.flatnonzero(np.diff(region_idx)) + 1
        out: list[Association] = []
        for rows in np.split(np.arange(len(region_idx)), cuts):
            version = versions[int(region_idx[rows[0]])]
            out.extend(self._associate(version, batch.take(alert_idx[rows]), rate))
        return out

    # ---------------------------------------------------------------- helpers

    def _prepare(
        self, meta: EventMeta, region_version: int, region: Region, window: Window | None
    ) -> ActiveVersion:
        """Validate and prepare a region version (raises before any state changes)."""
        win = window_for(meta.messenger, self._windows) if window is None else window
        return prepare(meta, region_version, region, win, self._hosts)

    def _active_index(self) -> tuple[ActiveRegions, list[ActiveVersion]]:
        if self._index is None:
            versions = [
                ev.active for _, ev in sorted(self._events.items()) if ev.active is not None
            ]
            entries = [
                RegionEntry((v.meta.event_id, v.region_version), v.region, v.opens_ns, v.closes_ns)
                for v in versions
            ]
            self._index = (ActiveRegions(entries, table_order=self._table_order), versions)
            self._index_rules = tuple(
                np.array(values, dtype=np.int64)
                for values in (
                    [v.t0_ns for v in versions],
                    [seconds_to_ns(v.window.before_s) for v in versions],
                    [seconds_to_ns(v.window.after_s) for v in versions],
                    [seconds_to_ns(v.window.newness_s) for v in versions],
                )
            )
        return self._index

    def _retro_match(self, version: ActiveVersion) -> list[Association]:
        past = self._store.query(version.opens_ns, version.closes_ns, version.region.ranges)
        if len(past) == 0:
            return []
        # A fresh engine over an archive-backed store (after a restart) has seen no alert
        # yet: its clock is then the newest archived alert it is given.
        now = self._now_ns if self._now_ns is not None else int(past.time_ns.max())
        return self._associate(version, past, self._rate.estimate(now))

    def _withdraw(self, assoc: Association) -> Association | None:
        ident = (*assoc.key, Status.WITHDRAWN)
        if ident in self._emitted:
            return None
        self._emitted.add(ident)
        return replace(assoc, status=Status.WITHDRAWN)

    def _associate(
        self, version: ActiveVersion, alerts: AlertBatch, rate: RateEstimate | None
    ) -> list[Association]:
        """New candidates of one version among alerts already inside its region."""
        alerts = alerts.take(
            time_mask(alerts.time_ns, alerts.first_ns, version.t0_ns, version.window)
        )
        fresh = [i for i, aid in enumerate(alerts.alert_id) if aid not in version.candidates]
        new = associations(version, alerts.take(np.array(fresh, dtype=np.int64)), rate)
        if not new:
            return []
        new_ids = {a.alert_id for a in new}
        ranked = rank_candidates([*version.candidates.values(), *new])
        emitted: list[Association] = []
        for assoc in ranked:
            if assoc.alert_id not in new_ids:
                continue
            ident = (*assoc.key, Status.CANDIDATE)
            if ident in self._emitted:
                continue
            self._emitted.add(ident)
            version.candidates[assoc.alert_id] = assoc
            emitted.append(assoc)
        return emitted

