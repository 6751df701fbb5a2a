"""The match rule: position, time window and newness.

An alert is a candidate counterpart of an event version when all of these hold:

1. **position** — its order-29 index lies in one of the region's ranges
   (:class:`coincidence.index.ActiveRegions`);
2. **time** — its observation time ``t`` lies in the closed window
   ``[t0 - before_s, t0 + after_s]`` around the trigger time ``t0``;
3. **newness** — its object's first detection ``t_first`` is no earlier than
   ``t0 - newness_s``: an object already varying well before the trigger is not a
   counterpart.

Both time comparisons are closed (``>=``/``<=``) and exact: times are integer
nanoseconds (:mod:`coincidence.times`), so an alert exactly at ``t0 - 600 s`` or at
``t0 + 20 d`` matches.

The durations are a :class:`Window` per messenger. Their default values live in one
place, the ``[coincidence]`` section of the settings (``mm_broker/default.toml``):
the caller builds the windows from the settings; a :class:`Window` has no defaults.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from coincidence.times import NS_PER_DAY, seconds_to_ns
from mm_broker.core.models import Messenger

#: Version of the match rules (MAJOR.MINOR.PATCH), stamped on every counterpart record
#: (``rule_versions``) and enriched alert (``prov_rules``). It MUST be bumped, and the
#: change listed in CHANGELOG.md, whenever the position, time or newness rule or a
#: default window changes (the windows set in the configuration are covered by the
#: configuration hash instead; tests/fink_core/test_fc_provenance.py pins the rule
#: content of each version).
RULES_VERSION = "1.0.1"

#: Seconds in one day.
DAY_S = 86_400.0


@dataclass(frozen=True)
class Window:
    """Time rules of one messenger, in seconds relative to the trigger time ``t0``.

    The defaults are settings (``coincidence.window_before_s``,
    ``coincidence.window_after_days`` and its per-messenger table,
    ``coincidence.newness_before_s``), explained in ``mm_broker/default.toml``: the
    contract window ``[t0 - 600 s, t0 + 20 d]`` and a newness margin of 600 s.

    Attributes
    ----------
    before_s : float
        The window opens at ``t0 - before_s``: alerts observed a little before the
        trigger (clock offsets, precursors, optical flashes caught by a survey
        exposure that began before t0) still count.
    after_s : float
        The window closes at ``t0 + after_s``: kilonovae, GRB afterglows and
        neutrino-associated transients are found within days to weeks.
    newness_s : float
        An alert's object must be first detected no earlier than ``t0 - newness_s``.

    Examples
    --------
    >>> w = Window(before_s=600.0, after_s=20 * DAY_S, newness_s=600.0)
    >>> w.opens_ns(0), w.closes_ns(0) // 86_400_000_000_000
    (-600000000000, 20)
    >>> round(w.duration_days, 6)
    20.006944
    """

    before_s: float
    after_s: float
    newness_s: float

    def __post_init__(self) -> None:
        for name in ("before_s", "after_s", "newness_s"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"Window.{name} must be finite and >= 0, got {value!r}")
        if self.before_s + self.after_s <= 0:
            raise ValueError("Window must have a positive duration")

    def opens_ns(self, t0_ns: int) -> int:
        """Start of the window (inclusive), ns since the epoch."""
        return t0_ns - seconds_to_ns(self.before_s)

    def closes_ns(self, t0_ns: int) -> int:
        """End of the window (inclusive), ns since the epoch."""
        return t0_ns + seconds_to_ns(self.after_s)

    def first_detection_min_ns(self, t0_ns: int) -> int:
        """Earliest allowed first detection of the object (inclusive)."""
        return t0_ns - seconds_to_ns(self.newness_s)

    @property
    def duration_days(self) -> float:
        """Length ``T`` of the window in days (input of the chance probability)."""
        return (seconds_to_ns(self.before_s) + seconds_to_ns(self.after_s)) / NS_PER_DAY


def window_for(messenger: Messenger, windows: Mapping[Messenger, Window]) -> Window:
    """Window of a messenger from ``windows`` (built from the settings by the caller).

    Raises
    ------
    KeyError
        If ``windows`` has no window for the messenger.
    """
    try:
        return windows[messenger]
    except KeyError:
        raise KeyError(f"no coincidence window for messenger {messenger}") from None


def time_mask(
    alert_ns: npt.ArrayLike,
    first_detection_ns: npt.ArrayLike,
    t0_ns: npt.ArrayLike,
    window: Window,
) -> npt.NDArray[np.bool_]:
    """Which alerts pass the time and newness rules of one event.

    Parameters
    ----------
    alert_ns : array_like of int
        Observation times of the alerts (ns since the epoch).
    first_detection_ns : array_like of int
        First detection time of each alert's object (ns since the epoch).
    t0_ns : int or array_like of int
        Trigger time(s), broadcast against the alerts.
    window : Window

    Returns
    -------
    ndarray of bool

    Examples
    --------
    >>> day = 86_400 * 10**9
    >>> window = Window(before_s=600.0, after_s=20 * DAY_S, newness_s=600.0)
    >>> time_mask([-600 * 10**9, -600 * 10**9 - 1, 20 * day, 20 * day + 1],
    ...           [-600 * 10**9] * 4, 0, window).tolist()
    [True, False, True, False]
    """
    t = np.asarray(alert_ns, dtype=np.int64)
    first = np.asarray(first_detection_ns, dtype=np.int64)
    t0 = np.asarray(t0_ns, dtype=np.int64)
    before = seconds_to_ns(window.before_s)
    after = seconds_to_ns(window.after_s)
    newness = seconds_to_ns(window.newness_s)
    result: npt.NDArray[np.bool_] = (t >= t0 - before) & (t <= t0 + after) & (first >= t0 - newness)
    return result


def pair_time_mask(
    alert_ns: npt.ArrayLike,
    first_detection_ns: npt.ArrayLike,
    t0_ns: npt.ArrayLike,
    before_ns: npt.ArrayLike,
    after_ns: npt.ArrayLike,
    newness_ns: npt.ArrayLike,
) -> npt.NDArray[np.bool_]:
    """:func:`time_mask` over candidate pairs of many events, one window per pair.

    All arguments are parallel int64 arrays (ns): for pair ``k``, the alert time,
    its object's first detection, the event's ``t0`` and the event window's
    durations. Used after :meth:`ActiveRegions.match`, indexing per-region arrays
    by ``region_idx``.
    """
    t = np.asarray(alert_ns, dtype=np.int64)
    first = np.asarray(first_detection_ns, dtype=np.int64)
    t0 = np.asarray(t0_ns, dtype=np.int64)
    result: npt.NDArray[np.bool_] = (
        (t >= t0 - np.asarray(before_ns, dtype=np.int64))
        & (t <= t0 + np.asarray(after_ns, dtype=np.int64))
        & (first >= t0 - np.asarray(newness_ns, dtype=np.int64))
    )
    return result
