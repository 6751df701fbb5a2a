"""Time window and newness rules, edges included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import coincidence.rules
from coincidence.rules import DAY_S, Window, pair_time_mask, time_mask, window_for
from coincidence.times import NS_PER_DAY, NS_PER_S, column_to_ns, from_ns, iso_utc, to_ns
from mm_broker.app.alert_frame import windows_from_settings
from mm_broker.core import config
from mm_broker.core.models import Messenger

S = NS_PER_S
DAY = NS_PER_DAY
T0 = to_ns(datetime(2024, 1, 15, 8, 0, tzinfo=UTC))
#: The contract window, written out (a Window has no defaults).
CONTRACT = {"before_s": 600.0, "after_s": 20 * 86_400.0, "newness_s": 600.0}


def test_default_window_is_the_contract_window_for_every_messenger() -> None:
    # The defaults live in the settings ([coincidence] of mm_broker/default.toml) only.
    windows = windows_from_settings(config.load(environ={}))
    assert set(windows) == set(Messenger)
    for messenger in Messenger:
        w = window_for(messenger, windows)
        assert (w.before_s, w.after_s, w.newness_s) == (600.0, 20 * 86_400.0, 600.0)
        assert w.duration_days == pytest.approx(20 + 600 / 86_400)


def test_a_window_has_no_defaults_of_its_own() -> None:
    with pytest.raises(TypeError):
        Window()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Window(before_s=600.0, after_s=20 * DAY_S)  # type: ignore[call-arg]
    assert not hasattr(coincidence.rules, "DEFAULT_WINDOWS")
    with pytest.raises(KeyError, match="no coincidence window for messenger NU"):
        window_for(Messenger.NU, {Messenger.GW: Window(**CONTRACT)})


def test_settings_change_the_windows() -> None:
    settings = config.load(environ={}).with_values({
        "coincidence.window_before_s": 60.0, "coincidence.newness_before_s": 7_200.0,
        "coincidence.window_after_days_by_messenger.NU": 2.0})
    windows = windows_from_settings(settings)
    assert windows[Messenger.NU] == Window(before_s=60.0, after_s=2 * DAY_S, newness_s=7_200.0)
    assert windows[Messenger.GW] == Window(before_s=60.0, after_s=20 * DAY_S, newness_s=7_200.0)


def test_window_edges_are_closed_and_exact() -> None:
    w = Window(**CONTRACT)
    t = np.array([T0 - 600 * S - 1, T0 - 600 * S, T0, T0 + 20 * DAY, T0 + 20 * DAY + 1])
    first = np.full(len(t), T0 - 600 * S)
    assert time_mask(t, first, T0, w).tolist() == [False, True, True, True, False]


def test_newness_edge() -> None:
    w = Window(**CONTRACT)
    t = np.full(3, T0 + DAY)
    first = np.array([T0 - 600 * S - 1, T0 - 600 * S, T0 + DAY])
    assert time_mask(t, first, T0, w).tolist() == [False, True, True]


def test_edges_survive_datetime_round_trips() -> None:
    # Alert exactly at t0 - 600 s and at t0 + 20 d given as pandas datetimes.
    import pandas as pd

    t0 = datetime(2024, 1, 15, 8, 0, 0, 123456, tzinfo=UTC)
    col = pd.Series(
        pd.to_datetime([t0 - timedelta(seconds=600), t0 + timedelta(days=20)], utc=True)
    )
    t = column_to_ns(col)
    assert time_mask(t, t, to_ns(t0), Window(**CONTRACT)).tolist() == [True, True]
    assert from_ns(int(t[0])) == t0 - timedelta(seconds=600)
    assert iso_utc(from_ns(int(t[1]))) == "2024-02-04T08:00:00.123456Z"


def test_configurable_windows_per_messenger() -> None:
    custom = {m: Window(**CONTRACT) for m in Messenger}
    custom[Messenger.NU] = Window(before_s=0.0, after_s=2 * 86_400.0, newness_s=3_600.0)
    w = window_for(Messenger.NU, custom)
    t = np.array([T0 - 1, T0, T0 + 2 * DAY, T0 + 2 * DAY + 1])
    assert time_mask(t, np.full(4, T0 - 3_600 * S), T0, w).tolist() == [False, True, True, False]
    assert window_for(Messenger.GW, custom) == Window(**CONTRACT)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"before_s": -1.0},
        {"after_s": float("nan")},
        {"newness_s": float("inf")},
        {"before_s": 0.0, "after_s": 0.0},
    ],
)
def test_invalid_windows(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Window(**{**CONTRACT, **kwargs})


def test_naive_times_are_refused() -> None:
    import pandas as pd

    with pytest.raises(ValueError, match="naive"):
        to_ns(datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        column_to_ns(pd.Series(pd.to_datetime(["2024-01-01"])))


@given(
    dt=st.integers(-30 * DAY, 30 * DAY),
    first=st.integers(-30 * DAY, 30 * DAY),
    before=st.integers(0, 5 * 86_400),
    after=st.integers(1, 30 * 86_400),
    newness=st.integers(0, 5 * 86_400),
)
def test_time_mask_property(dt: int, first: int, before: int, after: int, newness: int) -> None:
    w = Window(before_s=float(before), after_s=float(after), newness_s=float(newness))
    got = bool(time_mask(np.array([T0 + dt]), np.array([T0 + first]), T0, w)[0])
    expected = -before * S <= dt <= after * S and first >= -newness * S
    assert got == expected
    pair = pair_time_mask([T0 + dt], [T0 + first], [T0], [before * S], [after * S], [newness * S])
    assert bool(pair[0]) == expected
