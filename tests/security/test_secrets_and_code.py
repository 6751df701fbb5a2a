"""Secrets stay secret, the code has no injection or deserialisation holes, and local
mode listens on 127.0.0.1 only.

(a) Fake secrets (GCN client id and secret, PostgreSQL password, Kafka SASL password)
    are handed over the two documented ways, environment variables and the
    ``secrets_file``; real ``mm-broker`` commands run as subprocesses; none of their
    output nor the service logs may contain a secret value, and the secrets are still
    used (the database URL the configuration builds carries the password).
(b) Static checks of the repository's own packages with :mod:`ast`: no ``shell=True``,
    no unpickling or ``eval``/``exec``, no SQL text built from values outside the
    documented exceptions.
(c) Local mode: every default host is 127.0.0.1 and the running local services listen
    on loopback addresses only.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from mm_broker.app import cli
from mm_broker.core import config
from mm_broker.core.kafka import log_config

REPO = Path(__file__).resolve().parents[2]
MM_BROKER = str(Path(sys.executable).with_name("mm-broker"))
PACKAGES = ("mm_broker", "listeners", "skymaps", "coincidence", "fink_core", "publishers")


# --------------------------------------------------------------------------- #
# (a) secrets: environment and secrets file, never in output or logs
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Secrets:
    """Fake secret values and the environment that hands them over."""

    values: Mapping[str, str]  # label -> value
    env: Mapping[str, str]  # environment for the subprocesses
    secrets_file: Path


@pytest.fixture
def secrets(tmp_path: Path) -> Secrets:
    """Random fake secrets: GCN id (environment), GCN secret and PostgreSQL password
    (secrets file), Kafka SASL user and password (environment).

    The PostgreSQL password has the characters that break a URL written by hand
    (``@ / : # ? %``), between distinctive fragments (a URL that is not escaped spills
    them into host and database names, hence into error messages).
    """
    tag = uuid.uuid4().hex
    values = {
        "gcn_client_id": f"fakeGcnId{tag[:12]}",
        "gcn_client_secret": f"fakeGcnSecret{tag[12:24]}",
        "postgres_password": f"fakePg{tag[24:28]}@pghost{tag[28:32]}/pgdb{tag[:4]}:z#q?%w",
        "kafka_user": f"fakeKafkaUser{tag[:8]}",
        "kafka_password": f"fakeKafkaPassword{tag[8:20]}",
    }
    secrets_file = tmp_path / "secrets.toml"
    secrets_file.write_text(
        f'GCN_CLIENT_SECRET = "{values["gcn_client_secret"]}"\n'
        f'MM_TEST_PG_PASSWORD = "{values["postgres_password"]}"\n')
    secrets_file.chmod(0o600)
    env = {k: v for k, v in os.environ.items()
           if k not in ("GCN_CLIENT_ID", "GCN_CLIENT_SECRET", "MM_CONFIG")}
    env.update({
        "GCN_CLIENT_ID": values["gcn_client_id"],
        "MM_TEST_KAFKA_USER": values["kafka_user"],
        "MM_TEST_KAFKA_PASSWORD": values["kafka_password"],
        "MM_SECRETS_FILE": str(secrets_file),
        "MM_POSTGRES__PASSWORD_ENV": "MM_TEST_PG_PASSWORD",
        "MM_KAFKA__SASL_USERNAME_ENV": "MM_TEST_KAFKA_USER",
        "MM_KAFKA__SASL_PASSWORD_ENV": "MM_TEST_KAFKA_PASSWORD",
    })
    return Secrets(values, env, secrets_file)


def _leaks(text: str, secrets: Secrets) -> list[str]:
    """The secrets found in ``text``, whole or as a fragment of six characters or more
    between URL delimiters (with 30 characters around each, the secret masked)."""
    found = []
    for label, value in secrets.values.items():
        fragments = [f for f in re.split(r"[@/:#?%]", value) if len(f) >= 6]
        for probe in dict.fromkeys([value, value[:10], *fragments]):
            at = text.find(probe)
            if at >= 0:
                context = text[max(0, at - 30) : at + len(probe) + 30].replace(probe, "<SECRET>")
                found.append(f"{label}: ...{context}...")
                break
    return found


def _run(args: list[str], env: Mapping[str, str],
         timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MM_BROKER, *args], env=dict(env), capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def _text(proc: subprocess.CompletedProcess[str]) -> str:
    """Everything a command printed, under a header naming it."""
    args = " ".join(map(str, proc.args[1:]))
    return f"$ mm-broker {args} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"


def _run_until(args: list[str], env: Mapping[str, str], marker: str,
               timeout: float = 120) -> tuple[str, int | None]:
    """Start a daemon, wait until a line contains ``marker`` (or it exits), SIGTERM it."""
    proc = subprocess.Popen([MM_BROKER, *args], env=dict(env), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=REPO)
    lines: queue.Queue[str] = queue.Queue()
    stdout = proc.stdout
    assert stdout is not None

    def read() -> None:
        for line in stdout:
            lines.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            seen.append(lines.get(timeout=0.5))
        except queue.Empty:
            continue
        if marker in seen[-1]:
            break
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(timeout=10)
    while not lines.empty():
        seen.append(lines.get())
    return f"$ mm-broker {' '.join(args)} -> {proc.returncode}\n" + "".join(seen), proc.returncode


def _log_text(state_dir: Path, since: Mapping[Path, int]) -> Iterator[tuple[str, str]]:
    """What the services and daemons wrote to the state directory's logs during the test."""
    for path in sorted((state_dir / "logs").glob("*.log")):
        with open(path, "rb") as fh:
            fh.seek(since.get(path, 0))
            yield str(path), fh.read().decode("utf-8", "replace")


def test_secrets_are_read_from_env_and_file_and_never_printed(secrets: Secrets) -> None:
    """In a fresh process: the configuration finds every secret (file or environment),
    uses them where they belong (database URL, Kafka clients, Spark's Kafka source),
    and the printable configuration holds none."""
    probe = (
        "import hashlib, json\n"
        "from sqlalchemy.engine import make_url\n"
        "from mm_broker.core import config\n"
        "from mm_broker.core.kafka import client_config as kafka_client_config\n"
        "s = config.load()\n"
        "h = lambda v: v and hashlib.sha256(v.encode()).hexdigest()\n"
        "from mm_broker.core.kafka import spark_source_options as kafka_source_options\n"
        "k = kafka_client_config(s)\n"
        "o = kafka_source_options(s)\n"
        "assert o['kafka.security.protocol'] == 'SASL_SSL', o['kafka.security.protocol']\n"
        "assert o['kafka.sasl.mechanism'] == 'PLAIN'\n"
        "jaas = o['kafka.sasl.jaas.config']\n"
        "assert jaas.startswith('org.apache.kafka.common.security.plain.PlainLoginModule "
        "required username=\"'), jaas[:60]\n"
        "assert jaas == jaas.split(' username=')[0] + ' username=\"' + k['sasl.username'] + "
        "'\" password=\"' + k['sasl.password'] + '\";'\n"
        "print(json.dumps({'postgres_password': h(make_url(s.database_url()).password),\n"
        "  'kafka_user': h(k.get('sasl.username')), 'kafka_password': h(k.get('sasl.password')),\n"
        "  'gcn_client_id': h(config.secret(s.get('gcn.client_id_env'))),\n"
        "  'gcn_client_secret': h(config.secret(s.get('gcn.client_secret_env'))),\n"
        "  'shown': json.dumps(s.redacted()) + s.hash()}))\n"
    )
    env = {**secrets.env, "MM_KAFKA__SASL_MECHANISM": "PLAIN",
           "MM_KAFKA__SECURITY_PROTOCOL": "sasl_ssl"}
    proc = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                          text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    for label, value in secrets.values.items():
        assert got[label] == hashlib.sha256(value.encode()).hexdigest(), (
            f"{label} is not read intact (database URL, Kafka client or GCN settings)")
    assert not _leaks(got["shown"] + proc.stderr, secrets)


@pytest.mark.parametrize("raw_at", [False, True])
def test_secret_in_a_database_url_is_masked(secrets: Secrets, raw_at: bool) -> None:
    """A password written in ``[postgres] url`` is masked by ``config show``, also when
    it holds a raw ``@`` (a mistake: it should be ``%40``, but nothing of it may show)."""
    tag = uuid.uuid4().hex
    password = f"urlSecret{tag[:8]}@urlSecret{tag[8:16]}" if raw_at else f"urlSecret{tag[:8]}"
    env = {**secrets.env,
           "MM_POSTGRES__URL": f"postgresql+psycopg://mm_broker:{password}@127.0.0.1:55432/x"}
    out = _text(_run(["config", "show"], env))
    assert '"url": "postgresql+psycopg://mm_broker:***@127.0.0.1:55432/x"' in out, out
    assert "urlSecret" not in out


def _all_parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _all_parsers(sub)


def test_no_secret_option_on_the_command_line() -> None:
    """Secrets are never arguments: no option of any sub-command takes one."""
    suspicious = ("password", "secret", "token", "credential", "passwd")
    parsers = list(_all_parsers(cli.parser()))
    assert len(parsers) > 5  # the sub-commands were found
    found = [f"{p.prog}: {action.option_strings or action.dest}"
             for p in parsers for action in p._actions
             if any(word in name.lower() for name in [action.dest, *action.option_strings]
                    for word in suspicious)]
    assert not found


@pytest.mark.services
def test_commands_and_logs_never_show_a_secret(secrets: Secrets, fresh_db: config.Settings,
                                               running: config.Settings,
                                               data_dir: Path) -> None:
    """``config show``, ``services status``, ``notices ingest`` (also against a database
    that is down) and a ``listen gcn`` daemon on the local Kafka, with the secrets in
    the environment and the secrets file: no secret in their output or in the logs."""
    from confluent_kafka import Producer

    state_dir = running.state_dir
    since = {p: p.stat().st_size for p in (state_dir / "logs").glob("*.log")}
    env = {**secrets.env, "MM_STATE_DIR": str(state_dir),
           "MM_POSTGRES__DATABASE": str(fresh_db.get("postgres.database"))}
    outputs = [
        _text(_run(["config", "show"], env)),
        _text(_run(["-v", "services", "status"], env)),
    ]
    ingest = _run(["-v", "notices", "ingest",
                   str(data_dir / "notices/fermi_gbm/fermi_gbm_fin_pos_984.xml")], env)
    outputs.append(_text(ingest))
    down = _run(["-v", "notices", "ingest",
                 str(data_dir / "notices/swift/BAT_GRB_Pos_655721-214.xml")],
                {**env, "MM_POSTGRES__PORT": "1"})  # the database is down: an error path
    outputs.append(_text(down))

    run = uuid.uuid4().hex[:8]
    topic = f"test.security.{run}"
    bootstrap = str(running.get("kafka.bootstrap"))
    producer = Producer({**log_config(running), "bootstrap.servers": bootstrap})
    producer.produce(topic, (data_dir / "notices/swift/BAT_GRB_Pos_655721-214.xml").read_bytes())
    assert producer.flush(30) == 0
    listen, code = _run_until(["-v", "listen", "gcn", "--topic", topic],
                              {**env, "MM_GCN__BOOTSTRAP": bootstrap,
                               "MM_GCN__GROUP_ID": f"test-security-{run}"},
                              marker=f"gcn {topic}[")
    outputs.append(listen)

    leaks = [f"{out.splitlines()[0]}: {leak}" for out in outputs for leak in _leaks(out, secrets)]
    leaks += [f"{path}: {leak}" for path, text in _log_text(state_dir, since)
              for leak in _leaks(text, secrets)]
    assert not leaks, "secret values printed or logged:\n" + "\n".join(leaks)
    # The commands did their work with the secrets configured.
    assert ingest.returncode == 0, _text(ingest)
    assert json.loads(ingest.stdout.splitlines()[0])["status"] == "stored", _text(ingest)
    assert down.returncode != 0
    assert f"gcn {topic}[" in listen and code == 0, listen


# --------------------------------------------------------------------------- #
# (b) static checks of our own code, with ast
# --------------------------------------------------------------------------- #

#: Callables that deserialise arbitrary objects (code execution on untrusted bytes).
UNSAFE_LOADERS = frozenset({
    "pickle.load", "pickle.loads", "pickle.Unpickler", "_pickle.load", "_pickle.loads",
    "cPickle.load", "cPickle.loads", "dill.load", "dill.loads", "cloudpickle.load",
    "cloudpickle.loads", "joblib.load", "marshal.load", "marshal.loads", "shelve.open",
    "pandas.read_pickle", "yaml.unsafe_load", "yaml.full_load",
})
#: Callables whose first argument is SQL text.
SQL_FUNCTIONS = frozenset({
    "sqlalchemy.text", "sqlalchemy.sql.text", "sqlalchemy.sql.expression.text",
    "sqlalchemy.literal_column", "sqlalchemy.sql.expression.literal_column",
    "sqlalchemy.DDL", "sqlalchemy.schema.DDL", "psycopg.sql.SQL",
})
#: Methods whose first argument is SQL text (connections, cursors, Alembic's ``op``).
SQL_METHODS = frozenset({"execute", "executemany", "exec_driver_sql", "executescript",
                         "mogrify", "copy"})

#: Documented exceptions: (file, rule, function) -> why it is safe.
ALLOWED: dict[tuple[str, str, str], str] = {
    ("mm_broker/core/db/scratch.py", "sql-from-values", "temporary_database"): (
        "CREATE/DROP DATABASE of a generated name (prefix checked to letters, digits "
        "and _, plus a uuid hex): identifiers cannot be bound parameters"),
    # The portal's queries are assembled from fixed fragments of their own module (a
    # filter's conditions, a sort key looked up in EVENT_SORTS, a status looked up in
    # a table of three conditions, an optional time window): no request value is ever
    # part of the text; every value is a bound parameter (tests/portal check bad input).
    ("mm_broker/app/serve/queries.py", "sql-from-values", "list_events"): (
        "WHERE from EventFilter.where() (fixed conditions, bound values), ORDER BY from "
        "the EVENT_SORTS table"),
    ("mm_broker/app/serve/queries.py", "sql-from-values", "candidates"): (
        "the status condition is one of three fixed strings chosen by a dict lookup"),
    ("mm_broker/app/serve/sky.py", "sql-from-values", "cone"): (
        "the optional window condition is a fixed string; ra, dec, time are bound"),
}


@dataclass(frozen=True)
class Offence:
    """One finding of the static checks."""

    path: str
    line: int
    rule: str
    function: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule} in {self.function}(): {self.detail}"


def _dynamic_string(node: ast.AST) -> str | None:
    """How ``node`` builds a string from values (None for a constant or non-string)."""
    if isinstance(node, ast.JoinedStr):
        if any(isinstance(v, ast.FormattedValue) for v in node.values):
            return "f-string"
        return None
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "format"):
        return "str.format"
    if isinstance(node, ast.BinOp):
        left, right = node.left, node.right
        if isinstance(node.op, ast.Mod) and _is_str(left):
            return "% formatting"
        if isinstance(node.op, ast.Add) and (_is_str(left) or _is_str(right)
                                             or _dynamic_string(left) or _dynamic_string(right)):
            if not (_constant_str(left) and _constant_str(right)):
                return "concatenation"
    return None


def _is_str(node: ast.AST) -> bool:
    return (isinstance(node, ast.Constant) and isinstance(node.value, str)) or isinstance(
        node, ast.JoinedStr)


def _constant_str(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _constant_str(node.left) and _constant_str(node.right)
    return False


class _Checker(ast.NodeVisitor):
    """Collects :class:`Offence` s in one module."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.aliases: dict[str, str] = {}  # local name -> qualified name
        self.functions: list[str] = ["<module>"]
        self.assigned: list[dict[str, list[ast.AST]]] = [{}]
        self.found: list[Offence] = []

    # imports -------------------------------------------------------------
    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            self.aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else (
                a.name.split(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for a in node.names:
            self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"

    # scopes --------------------------------------------------------------
    def _scope(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.functions.append(node.name)
        self.assigned.append({})
        self.generic_visit(node)
        self.functions.pop()
        self.assigned.pop()

    visit_FunctionDef = _scope
    visit_AsyncFunctionDef = _scope

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            if isinstance(target, ast.Name):
                self.assigned[-1].setdefault(target.id, []).append(node.value)
        self.generic_visit(node)

    # calls ---------------------------------------------------------------
    def _qualname(self, func: ast.AST) -> str:
        parts: list[str] = []
        while isinstance(func, ast.Attribute):
            parts.append(func.attr)
            func = func.value
        if isinstance(func, ast.Name):
            parts.append(self.aliases.get(func.id, func.id))
            return ".".join(reversed(parts))
        return ".".join(reversed(parts))

    def _report(self, node: ast.AST, rule: str, detail: str) -> None:
        self.found.append(Offence(self.path, getattr(node, "lineno", 0), rule,
                                  self.functions[-1], detail))

    def _sql_argument(self, arg: ast.AST) -> str | None:
        how = _dynamic_string(arg)
        if how is None and isinstance(arg, ast.Name):
            for value in self.assigned[-1].get(arg.id, []):
                how = how or _dynamic_string(value)
        return how

    def visit_Call(self, node: ast.Call) -> None:
        name = self._qualname(node.func)
        for kw in node.keywords:
            if kw.arg == "shell" and not (isinstance(kw.value, ast.Constant)
                                          and kw.value.value is False):
                self._report(node, "shell=True", f"{name}(shell=...)")
        if name in UNSAFE_LOADERS:
            self._report(node, "unsafe-deserialisation", name)
        if name in ("numpy.load", "np.load") and any(
                kw.arg == "allow_pickle" and not (isinstance(kw.value, ast.Constant)
                                                  and kw.value.value is False)
                for kw in node.keywords):
            self._report(node, "unsafe-deserialisation", f"{name}(allow_pickle=True)")
        if name == "yaml.load" and not any(
                kw.arg == "Loader" and "Safe" in ast.unparse(kw.value) for kw in node.keywords):
            self._report(node, "unsafe-deserialisation", "yaml.load without SafeLoader")
        if isinstance(node.func, ast.Name) and node.func.id in ("eval", "exec") and (
                node.func.id not in self.aliases):
            self._report(node, "eval/exec", f"{node.func.id}()")
        is_sql = name in SQL_FUNCTIONS or (
            isinstance(node.func, ast.Attribute) and node.func.attr in SQL_METHODS)
        if is_sql and node.args:
            how = self._sql_argument(node.args[0])
            if how:
                self._report(node, "sql-from-values", f"{name}({how})")
        self.generic_visit(node)


def scan_source(source: str, path: str) -> list[Offence]:
    """Static checks of one module's source.

    Parameters
    ----------
    source : str
        Python source.
    path : str
        Its path, as reported.

    Returns
    -------
    list of Offence
    """
    checker = _Checker(path)
    checker.visit(ast.parse(source, filename=path))
    return checker.found


def scan_repository() -> list[Offence]:
    """Static checks of every Python file of :data:`PACKAGES`."""
    found: list[Offence] = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            found.extend(scan_source(path.read_text("utf-8"), rel))
    return found


def test_checker_finds_each_kind_of_offence() -> None:
    """The checks can fail: each rule fires on a small offending module, and the safe
    forms next to them do not."""
    source = '''
import pickle, subprocess, yaml
import numpy as np
from sqlalchemy import text
import sqlalchemy as sa

def bad(conn, cur, name, payload):
    subprocess.run("ls " + name, shell=True)                    # line 8
    pickle.loads(payload)                                       # line 9
    eval(payload)                                               # line 10
    conn.execute(text(f"SELECT * FROM t WHERE a = '{name}'"))   # line 11
    cur.execute("DELETE FROM t WHERE a = %s" % name)            # line 12
    query = "SELECT * FROM {}".format(name)
    conn.exec_driver_sql(query)                                 # line 14
    np.load(payload, allow_pickle=True)                         # line 15
    yaml.load(payload)                                          # line 16
    sa.text("SELECT " + name)                                   # line 17

def good(conn, ax, name, payload):
    subprocess.run(["ls", name], check=False)
    conn.execute(text("SELECT * FROM t WHERE a = :a"), {"a": name})
    conn.execute(text("SELECT * FROM t " "WHERE b = 1"))
    ax.text(0, 0, f"label {name}")
    yaml.load(payload, Loader=yaml.SafeLoader)
    np.load(payload)
'''
    found = scan_source(source, "example.py")
    assert sorted((o.line, o.rule) for o in found) == [
        (8, "shell=True"), (9, "unsafe-deserialisation"), (10, "eval/exec"),
        (11, "sql-from-values"), (12, "sql-from-values"), (14, "sql-from-values"),
        (15, "unsafe-deserialisation"), (16, "unsafe-deserialisation"),
        (17, "sql-from-values")], [str(o) for o in found]


def test_repository_code_has_no_shell_pickle_eval_or_sql_from_values() -> None:
    found = scan_repository()
    offences = [o for o in found if (o.path, o.rule, o.function) not in ALLOWED]
    assert not offences, "\n".join(str(o) for o in offences)
    # The documented exceptions are still where they are said to be (no stale entry).
    used = {(o.path, o.rule, o.function) for o in found}
    assert set(ALLOWED) <= used, sorted(set(ALLOWED) - used)


# --------------------------------------------------------------------------- #
# (c) local mode listens on 127.0.0.1 only
# --------------------------------------------------------------------------- #


def test_default_configuration_is_local_only() -> None:
    defaults = config.load(environ={})
    hosts = [h.rsplit(":", 1)[0] for h in str(defaults.get("kafka.bootstrap")).split(",")]
    assert hosts == ["127.0.0.1"]
    assert defaults.get("postgres.host") == "127.0.0.1"
    assert defaults.get("postgres.url") == ""
    assert defaults.get("comet.host") == "127.0.0.1"
    assert defaults.get("comet.whitelist") == ["127.0.0.1/32"]
    assert str(defaults.get("spark.master")).startswith("local")
    assert defaults.get("kafka.security_protocol") == "plaintext"  # only ever on loopback


def _listening() -> list[tuple[str, int, int]]:
    """Listening TCP sockets: (hex address, port, inode), IPv4 and IPv6."""
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] != "0A":  # LISTEN
                continue
            address, port = fields[1].split(":")
            out.append((address, int(port, 16), int(fields[9])))
    return out


def _is_loopback(address: str) -> bool:
    if len(address) == 8:
        return address.endswith("7F")  # 127.x.x.x
    v6_loopback = "00000000000000000000000001000000"
    return address == v6_loopback or (address[:24] == "0000000000000000FFFF0000"
                                      and address[24:].endswith("7F"))


def _service_pids(state_dir: Path) -> list[int]:
    pids = []
    for pid_file in [*(state_dir / "run").glob("*.pid"),
                     *(state_dir / "postgres").rglob("postmaster.pid")]:
        try:
            pids.append(int(pid_file.read_text().split()[0]))
        except (OSError, ValueError, IndexError):
            continue
    return pids


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    except OSError:
        pass
    return inodes


@pytest.mark.services
def test_local_services_listen_on_loopback_only(running: config.Settings) -> None:
    ports = {int(running.get(k)) for k in ("postgres.port", "kafka.port",
                                           "kafka.controller_port", "comet.receive_port",
                                           "comet.broadcast_port")}
    sockets = _listening()
    ours = [s for s in sockets if s[1] in ports]
    assert {s[1] for s in ours} == ports, "a local service is not listening"
    exposed = [f"port {port} on {addr}" for addr, port, _ in ours if not _is_loopback(addr)]
    # Every listening socket the service processes hold (JMX, RMI, extra ports...).
    inodes = set().union(*(_socket_inodes(p) for p in _service_pids(running.state_dir)))
    exposed += [f"port {port} on {addr} (a service process)" for addr, port, inode in sockets
                if inode in inodes and not _is_loopback(addr)]
    assert not exposed, exposed
