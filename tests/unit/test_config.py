"""Configuration: defaults, site file, MM_* overrides, validation, secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from mm_broker import config


def test_defaults_are_loopback_and_typed() -> None:
    s = config.load(environ={})
    assert s.get("kafka.bootstrap").startswith("127.0.0.1:")
    assert s.get("postgres.host") == "127.0.0.1"
    assert s.get("comet.whitelist") == ["127.0.0.1/32"]
    assert isinstance(s.get("kafka.port"), int)


def test_env_overrides_parse_to_the_default_type(tmp_path: Path) -> None:
    s = config.load(environ={"MM_KAFKA__PORT": "19092", "MM_STATE_DIR": str(tmp_path),
                             "MM_COMET__WHITELIST": '["10.0.0.0/8"]'})
    assert s.get("kafka.port") == 19092
    assert s.state_dir == tmp_path.resolve()
    assert s.get("comet.whitelist") == ["10.0.0.0/8"]


def test_site_file_then_env_precedence(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text('[kafka]\nport = 1111\npartitions = 8\n')
    s = config.load(site, environ={"MM_KAFKA__PORT": "2222"})
    assert s.get("kafka.port") == 2222
    assert s.get("kafka.partitions") == 8
    assert s.source == str(site)


@pytest.mark.parametrize("env, message", [
    ({"MM_KAFKA__PORT": "not-a-number"}, "cannot parse"),
    ({"MM_KAFKA__PORT": "true"}, "should be int"),
])
def test_bad_values_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(config.ConfigError, match=message):
        config.load(environ=env)


def test_unknown_key_in_site_file(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text('[kafka]\nbootstrp = "x"\n')
    with pytest.raises(config.ConfigError, match="bootstrp"):
        config.load(site, environ={})


def test_password_read_from_env_and_redacted() -> None:
    env = {"MM_POSTGRES__PASSWORD_ENV": "PGSECRET_FOR_TEST"}
    import os

    os.environ["PGSECRET_FOR_TEST"] = "s3cr3t-value"
    try:
        s = config.load(environ=env)
        assert ":s3cr3t-value@" in s.database_url()
        assert "s3cr3t-value" not in str(s.redacted())
    finally:
        del os.environ["PGSECRET_FOR_TEST"]
    s2 = config.load(environ={"MM_POSTGRES__URL": "postgresql+psycopg://u:pw123@db/x"})
    assert "pw123" not in str(s2.redacted())
    assert s2.hash() != config.load(environ={}).hash()
