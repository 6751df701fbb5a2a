"""The JSON registry: explicit tables that agree with the missions' own facts."""

from __future__ import annotations

import doctest
import json
from collections.abc import Callable
from types import ModuleType

import pytest

from listeners.parsers import (
    json_common,
    json_einstein_probe,
    json_gcn_unified,
    json_icecube,
    json_km3net,
    json_lvk,
    json_registry,
    json_superk,
    json_swift,
    json_values,
)
from listeners.parsers.json_gcn_unified import MissionSpec
from listeners.parsers.json_registry import (
    SCHEMA_PARSERS,
    TOPIC_PARSERS,
    Parser,
    parse_json,
)
from mm_broker.core.errors import UnsupportedNoticeType

pytestmark = pytest.mark.filterwarnings("error")

#: Each mission table and the parser that reads its notices.
SPECS: list[tuple[MissionSpec, Parser]] = [
    (json_einstein_probe.EP_WXT, json_einstein_probe.from_doc),
    (json_icecube.GOLD_BRONZE, json_icecube.gold_bronze_from_doc),
    (json_icecube.LVK_NU_TRACK_SEARCH, json_icecube.lvk_nu_track_search_from_doc),
    (json_swift.SWIFT_BAT_GUANO, json_swift.guano_from_doc),
    (json_km3net.KM3NET_ALERT, json_km3net.from_doc),
    (json_superk.SUPERK_SN, json_superk.from_doc),
    (json_gcn_unified.FERMI_GBM, json_gcn_unified.fermi_gbm_from_doc),
    (json_gcn_unified.MAXI_GSC, json_gcn_unified.maxi_gsc_from_doc),
    (json_gcn_unified.SVOM_TRIGGER, json_gcn_unified.svom_trigger_from_doc),
]

MODULES: list[ModuleType] = [
    json_common,
    json_values,
    json_gcn_unified,
    json_einstein_probe,
    json_icecube,
    json_km3net,
    json_lvk,
    json_registry,
    json_superk,
    json_swift,
]

#: Topics the brief and GCN name; every one must have a parser.
REQUIRED_TOPICS = [
    "igwn.gwalert",
    "gcn.notices.einstein_probe.wxt.alert",
    "gcn.notices.icecube.lvk_nu_track_search",
    "gcn.notices.icecube.gold_bronze_track_alerts",
    "gcn.notices.swift.bat.guano",
    "gcn.notices.superk.sn_alert",
]


@pytest.mark.parametrize(("spec", "parser"), SPECS, ids=lambda v: getattr(v, "key", ""))
def test_mission_tables_agree_with_the_registry(spec: MissionSpec, parser: Parser) -> None:
    for topic in spec.topics:
        assert TOPIC_PARSERS[topic] is parser, topic
    for path in spec.schemas:
        assert SCHEMA_PARSERS[path] is parser, path


def test_registry_holds_only_table_entries() -> None:
    """No parser in the registry that no mission table (or LVK) declares."""
    declared_topics = {t for spec, _ in SPECS for t in spec.topics} | {json_lvk.TOPIC}
    declared_schemas = {p for spec, _ in SPECS for p in spec.schemas}
    assert set(TOPIC_PARSERS) == declared_topics
    assert set(SCHEMA_PARSERS) == declared_schemas
    assert TOPIC_PARSERS[json_lvk.TOPIC] is json_lvk.from_doc


@pytest.mark.parametrize("topic", REQUIRED_TOPICS)
def test_required_topics(topic: str) -> None:
    assert topic in TOPIC_PARSERS


def test_messengers_of_the_missions() -> None:
    messengers = {spec.key: spec.messenger.value for spec, _ in SPECS}
    assert messengers == {
        "EP_WXT_ALERT": "X",
        "ICECUBE_TRACK_ALERT": "NU",
        "ICECUBE_LVK_NU_TRACK_SEARCH": "NU",
        "SWIFT_BAT_GUANO": "GRB",
        "KM3NET_ALERT": "NU",
        "SUPERK_SN_ALERT": "NU",
        "FERMI_GBM_TRIGGER": "GRB",
        "MAXI_GSC": "X",
        "SVOM_TRIGGER": "GRB",
    }


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("gcn.heartbeat", r"topic 'gcn.heartbeat': GCN heartbeat, not a notice"),
        ("gcn.classic.voevent.FERMI_GBM_FIN_POS", r"unrecognised JSON shape"),
    ],
)
def test_refused_topics(key: str, message: str) -> None:
    with pytest.raises(UnsupportedNoticeType, match=message):
        parse_json(b"{}", topic=key)


def test_shape_dispatch_without_topic_or_schema(read_notice: Callable[[str], bytes]) -> None:
    payload = read_notice("notices/lvk/MS181101ab-retraction.json")
    assert "$schema" not in json.loads(payload)
    assert parse_json(payload).event_id == "LVK:MS181101ab"


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_docstring_examples(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("topic", [None, "igwn.gwalert", "gcn.notices.foo.bar"])
def test_payload_decoded_once(read_notice: Callable[[str], bytes],
                              monkeypatch: pytest.MonkeyPatch, topic: str | None) -> None:
    """The registry decodes the JSON once and hands the document to the mission parser
    (by topic, by $schema or by shape), never the bytes to decode again."""
    calls: list[int] = []
    loads = json_common.json.loads

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return loads(*args, **kwargs)  # type: ignore[arg-type]

    payload = read_notice("notices/lvk/MS181101ab-preliminary.json")
    monkeypatch.setattr(json_common.json, "loads", counting)
    assert parse_json(payload, topic=topic).event_id == "LVK:MS181101ab"
    assert len(calls) == 1


def test_schema_dispatch_decoded_once(read_notice: Callable[[str], bytes],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    loads = json_common.json.loads

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return loads(*args, **kwargs)  # type: ignore[arg-type]

    payload = read_notice("notices/einstein_probe/alert_247.json")
    monkeypatch.setattr(json_common.json, "loads", counting)
    assert parse_json(payload).event_id.startswith("EP:")
    assert len(calls) == 1
