"""Configuration: defaults, site file, MM_* overrides, validation, secrets never shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mm_broker.core import config


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


def test_postgres_tls_and_managed_url_take_the_password_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.engine import make_url

    monkeypatch.setenv("PG_TLS_TEST_SECRET", "p@ss/w:rd#1")
    local = config.load(environ={"MM_POSTGRES__SSLMODE": "verify-full",
                                 "MM_POSTGRES__SSLROOTCERT": "/etc/mm/ca.pem",
                                 "MM_POSTGRES__PASSWORD_ENV": "PG_TLS_TEST_SECRET"})
    url = make_url(local.database_url())
    assert url.password == "p@ss/w:rd#1" and url.host == "127.0.0.1"
    assert dict(url.query) == {"sslmode": "verify-full", "sslrootcert": "/etc/mm/ca.pem"}
    managed = config.load(environ={
        "MM_POSTGRES__URL": "postgresql+psycopg://mm@db.example.org:5432/mm",
        "MM_POSTGRES__SSLMODE": "require", "MM_POSTGRES__PASSWORD_ENV": "PG_TLS_TEST_SECRET"})
    url = make_url(managed.database_url())
    assert (url.username, url.password, url.host, url.port, url.database) == \
        ("mm", "p@ss/w:rd#1", "db.example.org", 5432, "mm")
    assert dict(url.query) == {"sslmode": "require"}
    assert "p@ss" not in json.dumps(managed.redacted())
    # Without TLS settings the local URL has no query at all.
    assert "?" not in config.load(environ={}).database_url()
