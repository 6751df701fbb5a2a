"""Typed configuration sections: one field per key of default.toml, checked at load."""

from __future__ import annotations

import dataclasses
import tomllib
from datetime import UTC, datetime, timedelta
from importlib import resources

import pytest

from mm_broker.core import sections
from mm_broker.core.config import ConfigError, load


def _defaults() -> dict:
    return tomllib.loads(resources.files("mm_broker").joinpath("default.toml").read_text())


@pytest.mark.parametrize("name", sorted(sections.SECTIONS))
def test_every_key_of_default_toml_has_a_typed_field_and_back(name: str) -> None:
    table = _defaults()[name]
    fields = {f.name for f in dataclasses.fields(sections.SECTIONS[name])}
    assert fields == set(table), (f"[{name}]: keys without a field "
                                  f"{sorted(set(table) - fields)}, fields without a key "
                                  f"{sorted(fields - set(table))}")


def test_every_table_of_default_toml_is_a_section() -> None:
    tables = {k for k, v in _defaults().items() if isinstance(v, dict)}
    assert tables == set(sections.SECTIONS)


def test_typed_values_follow_the_overrides() -> None:
    s = load(environ={"MM_COINCIDENCE__WINDOW_BEFORE_S": "30", "MM_KAFKA__PORT": "19092"})
    assert s.coincidence.window_before_s == 30.0
    assert isinstance(s.coincidence.window_before_s, float)
    assert s.kafka.port == 19092
    assert isinstance(s.alerts.topics, tuple) and s.alerts.topics[0] == "ztf.alerts"


@pytest.mark.parametrize(("env", "message"), [
    ({"MM_KAFKA__PORT": "70000"}, "kafka.port = 70000 is not a TCP port"),
    ({"MM_LISTEN__DIR_POLL_S": "0"}, "listen.dir_poll_s = 0.0 must be positive"),
    ({"MM_KAFKA__SECURITY_PROTOCOL": "carrier_pigeon"}, "kafka.security_protocol"),
    ({"MM_ALERTS__MAX_OFFSETS_PER_TRIGGER": "-5"}, "alerts.max_offsets_per_trigger"),
])
def test_out_of_range_values_fail_at_load_naming_the_key(env: dict[str, str],
                                                         message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load(environ=env)


def test_wrong_types_are_refused_by_the_section_builder() -> None:
    table = dict(_defaults()["listen"], dir_poll_s="fast")
    with pytest.raises(ConfigError, match=r"listen\.dir_poll_s = 'fast' should be a number"):
        sections.build(sections.ListenSettings, "listen", table)
    table = dict(_defaults()["gcn"], topics=["a", 3])
    with pytest.raises(ConfigError, match=r"gcn\.topics\[1\] = 3 should be str"):
        sections.build(sections.GcnSettings, "gcn", table)
    table = dict(_defaults()["skymaps"])
    del table["max_tiles"]
    with pytest.raises(ConfigError, match=r"skymaps\.max_tiles is missing"):
        sections.build(sections.SkymapSettings, "skymaps", table)


def test_window_per_messenger() -> None:
    s = load(environ={"MM_COINCIDENCE__WINDOW_BEFORE_S": "120"})
    t0 = datetime(2024, 1, 15, 12, tzinfo=UTC)
    c = dataclasses.replace(s.coincidence,
                            window_after_days_by_messenger={"GW": 3.0, "NU": 20.0})
    assert c.window("GW", t0) == (t0 - timedelta(seconds=120), t0 + timedelta(days=3))
    # a messenger without its own length falls back to window_after_days
    assert c.window("X", t0)[1] == t0 + timedelta(days=s.coincidence.window_after_days)
