"""Configuration: documented defaults, a site file, and ``MM_…`` environment overrides.

The defaults and their documentation live in ``mm_broker/default.toml``; this module
only loads, merges, validates and types them. Precedence, lowest first:

1. ``default.toml`` shipped with the package;
2. the site file given by ``--config`` or the ``MM_CONFIG`` environment variable;
3. environment variables: ``MM_<KEY>`` for top-level keys, ``MM_<SECTION>__<KEY>``
   for keys of a section (values are parsed as TOML scalars, falling back to strings).

Secrets are never stored in the configuration: ``*_env`` keys name environment
variables, and :func:`secret` reads them. :meth:`Settings.redacted` is what may be
printed or hashed.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from mm_broker.core import sections as sec
from mm_broker.core.errors import ConfigError

ENV_PREFIX = "MM_"


def _load_defaults() -> dict[str, Any]:
    text = resources.files("mm_broker").joinpath("default.toml").read_text("utf-8")
    return tomllib.loads(text)


def _parse_env_value(raw: str, default: Any) -> Any:
    """Parse an environment string to the type of the default it overrides."""
    if isinstance(default, str):
        return raw
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"cannot parse {raw!r} as {type(default).__name__}") from exc
    return value


def _merge(base: dict[str, Any], over: Mapping[str, Any], where: str = "") -> None:
    for key, value in over.items():
        if key not in base:
            raise ConfigError(f"unknown setting {where}{key!r}")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"setting {where}{key!r} must be a table")
            _merge(base[key], value, f"{where}{key}.")
        else:
            base[key] = value


def _apply_env(tree: dict[str, Any], environ: Mapping[str, str]) -> None:
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name == "MM_CONFIG":
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        if "__" in rest:
            section, key = rest.split("__", 1)
            table = tree.get(section)
            if not isinstance(table, dict) or key not in table:
                continue  # not one of ours (other tools may use MM_ too)
            table[key] = _parse_env_value(raw, table[key])
        elif rest in tree and not isinstance(tree[rest], dict):
            tree[rest] = _parse_env_value(raw, tree[rest])


def _check_types(tree: Mapping[str, Any], defaults: Mapping[str, Any], where: str = "") -> None:
    for key, default in defaults.items():
        value = tree[key]
        if isinstance(default, dict):
            _check_types(value, default, f"{where}{key}.")
            continue
        expected: type | tuple[type, ...] = type(default)
        if isinstance(default, float):
            expected = (int, float)
        if isinstance(default, bool) or not isinstance(default, (int, float)):
            ok = isinstance(value, expected)
        else:
            ok = isinstance(value, expected) and not isinstance(value, bool)
        if not ok:
            raise ConfigError(
                f"setting {where}{key} = {value!r} should be {type(default).__name__}"
            )


@dataclass(frozen=True)
class Settings:
    """The effective configuration: typed, frozen sections validated at load.

    Code reads the typed sections (``settings.kafka.bootstrap``,
    ``settings.coincidence.window(messenger, t0)``; :mod:`mm_broker.core.sections`)
    and the path helpers below. :meth:`get` (dotted access to the merged tree) serves
    ``config show``, hashing and tests.
    """

    tree: Mapping[str, Any]
    source: str

    def __post_init__(self) -> None:
        for name in sec.SECTIONS:  # validated once, here: a bad value fails at load
            getattr(self, name)

    @cached_property
    def postgres(self) -> sec.PostgresSettings:
        """``[postgres]``."""
        return sec.build(sec.PostgresSettings, "postgres", self.tree["postgres"])

    @cached_property
    def kafka(self) -> sec.KafkaSettings:
        """``[kafka]``."""
        return sec.build(sec.KafkaSettings, "kafka", self.tree["kafka"])

    @cached_property
    def spark(self) -> sec.SparkSettings:
        """``[spark]``."""
        return sec.build(sec.SparkSettings, "spark", self.tree["spark"])

    @cached_property
    def comet(self) -> sec.CometSettings:
        """``[comet]``."""
        return sec.build(sec.CometSettings, "comet", self.tree["comet"])

    @cached_property
    def gcn(self) -> sec.GcnSettings:
        """``[gcn]``."""
        return sec.build(sec.GcnSettings, "gcn", self.tree["gcn"])

    @cached_property
    def listen(self) -> sec.ListenSettings:
        """``[listen]``."""
        return sec.build(sec.ListenSettings, "listen", self.tree["listen"])

    @cached_property
    def skymaps(self) -> sec.SkymapSettings:
        """``[skymaps]``."""
        return sec.build(sec.SkymapSettings, "skymaps", self.tree["skymaps"])

    @cached_property
    def coincidence(self) -> sec.CoincidenceSettings:
        """``[coincidence]``."""
        return sec.build(sec.CoincidenceSettings, "coincidence", self.tree["coincidence"])

    @cached_property
    def coincidence_notices(self) -> sec.NoticeCoincidenceSettings:
        """``[coincidence_notices]``."""
        return sec.build(sec.NoticeCoincidenceSettings, "coincidence_notices",
                         self.tree["coincidence_notices"])

    @cached_property
    def publish(self) -> sec.PublishSettings:
        """``[publish]``."""
        return sec.build(sec.PublishSettings, "publish", self.tree["publish"])

    @cached_property
    def alerts(self) -> sec.AlertSettings:
        """``[alerts]``."""
        return sec.build(sec.AlertSettings, "alerts", self.tree["alerts"])

    @cached_property
    def serve(self) -> sec.ServeSettings:
        """``[serve]``."""
        return sec.build(sec.ServeSettings, "serve", self.tree["serve"])

    def get(self, dotted: str) -> Any:
        """Return the value of a dotted key such as ``"kafka.port"``."""
        node: Any = self.tree
        for part in dotted.split("."):
            if not isinstance(node, Mapping) or part not in node:
                raise ConfigError(f"unknown setting {dotted!r}")
            node = node[part]
        return node

    @property
    def state_dir(self) -> Path:
        """Absolute state directory (all local services keep their files there)."""
        return Path(self.get("state_dir")).expanduser().resolve()

    @property
    def data_dir(self) -> Path:
        """Absolute path of the shared real data."""
        return Path(self.get("data_dir")).expanduser().resolve()

    @property
    def cache_dir(self) -> Path:
        """Absolute path of the jar cache."""
        return Path(self.get("cache_dir")).expanduser().resolve()

    def archive_uri(self) -> str:
        """URI of the alert archive (``[alerts] archive_uri`` or ``<state_dir>/archive``)."""
        uri = str(self.get("alerts.archive_uri"))
        return uri or (self.state_dir / "archive").as_uri()

    def checkpoint_uri(self) -> str:
        """URI of the streaming checkpoints."""
        uri = str(self.get("alerts.checkpoint_uri"))
        return uri or (self.state_dir / "checkpoints").as_uri()

    def catalogue_dir(self) -> Path:
        """Folder of the cross-match catalogues."""
        folder = str(self.get("alerts.catalogue_dir"))
        return Path(folder).expanduser().resolve() if folder else self.data_dir / "catalogues"

    def database_url(self) -> str:
        """SQLAlchemy URL of the store (password read from its environment variable)."""
        from sqlalchemy.engine import make_url

        pg = self.tree["postgres"]
        password = secret(pg["password_env"]) if pg["password_env"] else None
        tls = {k: str(pg[k]) for k in ("sslmode", "sslrootcert") if pg[k]}
        if pg["url"]:
            url = make_url(str(pg["url"]))
            if password is not None:
                url = url.set(password=password)
            if tls:
                url = url.update_query_dict(tls)
            return url.render_as_string(hide_password=False)
        # Quote user and password: a secret may hold '@', ':' or '/'.
        user = quote(str(pg["user"]), safe="")
        auth = user if password is None else f"{user}:{quote(password, safe='')}"
        query = "" if not tls else "?" + urlencode(tls)
        return (f"postgresql+psycopg://{auth}@{pg['host']}:{pg['port']}/{pg['database']}"
                f"{query}")

    def redacted(self) -> dict[str, Any]:
        """The configuration with any URL password masked: safe to print and hash."""
        tree = copy.deepcopy(dict(self.tree))
        url = tree["postgres"].get("url", "")
        if url and "@" in url and ":" in url.rsplit("@", 1)[0].split("//", 1)[-1]:
            head, tail = url.rsplit("@", 1)
            scheme, cred = head.split("//", 1)
            tree["postgres"]["url"] = f"{scheme}//{cred.split(':', 1)[0]}:***@{tail}"
        return tree

    def with_values(self, values: Mapping[str, Any]) -> Settings:
        """A copy with dotted keys replaced, e.g. ``{"postgres.database": "x"}``.

        Unknown keys raise :class:`ConfigError`; types are checked as in :func:`load`.
        """
        tree = copy.deepcopy(dict(self.tree))
        for dotted, value in values.items():
            node: Any = tree
            *parents, last = dotted.split(".")
            for part in parents:
                node = node.get(part) if isinstance(node, dict) else None
                if not isinstance(node, dict):
                    raise ConfigError(f"unknown setting {dotted!r}")
            if last not in node:
                raise ConfigError(f"unknown setting {dotted!r}")
            node[last] = value
        _check_types(tree, _load_defaults())
        return Settings(tree=tree, source=self.source)

    def hash(self) -> str:
        """Short SHA-256 of the redacted effective configuration (provenance)."""
        blob = json.dumps(self.redacted(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def secret(env_name: str) -> str | None:
    """Return the value of a secret held in environment variable ``env_name``."""
    return os.environ.get(env_name) or None


def load(path: str | os.PathLike[str] | None = None,
         environ: Mapping[str, str] | None = None) -> Settings:
    """Load the effective configuration.

    Parameters
    ----------
    path : path-like, optional
        Site TOML file; defaults to ``$MM_CONFIG`` if set.
    environ : mapping, optional
        Environment to read overrides from (defaults to :data:`os.environ`).

    Returns
    -------
    Settings

    Examples
    --------
    >>> s = load(environ={"MM_KAFKA__PORT": "19092"})
    >>> s.get("kafka.port")
    19092
    """
    env = os.environ if environ is None else environ
    defaults = _load_defaults()
    tree = copy.deepcopy(defaults)
    source = "defaults"
    site = path or env.get("MM_CONFIG")
    if site:
        with open(site, "rb") as fh:
            try:
                _merge(tree, tomllib.load(fh))
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{site}: {exc}") from exc
        source = str(site)
    _apply_env(tree, env)
    _check_types(tree, defaults)
    secrets_file = tree.get("secrets_file")
    if secrets_file and environ is None:
        _export_secrets(Path(secrets_file).expanduser())
    return Settings(tree=tree, source=source)


def _export_secrets(path: Path) -> None:
    """Export the string values of a secrets TOML file into this process's environment."""
    with open(path, "rb") as fh:
        values = tomllib.load(fh)
    for key, value in values.items():
        if not isinstance(value, str):
            raise ConfigError(f"secrets file {path}: {key} must be a string")
        os.environ.setdefault(key, value)
