"""What `packloop gateway` and `packloop planner` settle before they serve: a database that
cannot be opened is one line naming its setting (no password), a missing pepper is
warned of, and a client's X-Forwarded-For is believed only from the proxies named."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
import uvicorn
from click.testing import CliRunner

import services.cli.serve
from services.cli import cli
from services.gateway import GatewayConfig
from tests.services.helpers import FakeKafkaIO

UNREACHABLE = "postgresql+psycopg://packloop:Sup3rSecretPW@127.0.0.1:1/packloop"


class FakeServer:
    """uvicorn.Server that keeps its configuration instead of serving."""

    configs: list[uvicorn.Config] = []

    def __init__(self, config: uvicorn.Config) -> None:
        self.config = config
        self.started = True
        self.should_exit = False
        FakeServer.configs.append(config)

    def run(self) -> None:
        pass


@pytest.fixture
def offline(monkeypatch) -> list[uvicorn.Config]:
    """The commands without Kafka (no start-up check, an in-memory KafkaIO) and without a
    server (its configuration kept); the configurations the commands made."""
    monkeypatch.setattr(services.cli.serve, "check_kafka", lambda settings: None)
    from_settings = GatewayConfig.from_settings.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(GatewayConfig, "from_settings", classmethod(
        lambda cls, settings, **overrides: from_settings(cls, settings, kafka_io=FakeKafkaIO(),
                                                         **overrides)))
    monkeypatch.setattr(uvicorn, "Server", FakeServer)
    monkeypatch.setenv("PACKLOOP_GATEWAY_WEBHOOKS", "false")
    monkeypatch.setenv("PACKLOOP_GATEWAY_DISPATCH", "false")
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    FakeServer.configs = []
    return FakeServer.configs


def gateway(env: dict[str, str]) -> Any:
    return CliRunner().invoke(cli, ["gateway"], env=env)


@pytest.mark.parametrize("url", [UNREACHABLE, UNREACHABLE + "?password=Sup3rSecretPW",
                                 UNREACHABLE.replace(":1/", ":notaport/")],
                         ids=["refused", "query", "unparsable"])
def test_an_unreachable_token_database_is_one_line_without_its_password(offline, url) -> None:
    """Before: a 144-line traceback from the gateway."""
    result = gateway({"PACKLOOP_TOKEN_DB_URL": url})
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: cannot open the token database "
                                    "(PACKLOOP_TOKEN_DB_URL=postgresql+psycopg://")
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "Sup3rSecretPW" not in result.output


def test_an_unreachable_job_database_is_one_line_without_its_password(offline) -> None:
    result = CliRunner().invoke(cli, ["planner"], env={"PACKLOOP_PLANNER_DB_URL": UNREACHABLE})
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: cannot open the plan job store "
                                    "(PACKLOOP_PLANNER_DB_URL=postgresql+psycopg://packloop:***@")
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "Sup3rSecretPW" not in result.output


@pytest.mark.parametrize(("pepper", "warned"), [(None, True), ("", True),
                                                 ("a-real-secret-41", False)])
def test_the_services_warn_without_a_pepper(offline, caplog, pepper, warned) -> None:
    env = {"PACKLOOP_TOKEN_PEPPER": pepper} if pepper is not None else {}
    with caplog.at_level(logging.WARNING, logger="packloop.auth"):
        assert gateway(env).exit_code == 0
        CliRunner().invoke(cli, ["planner"], env={**env, "PACKLOOP_PLANNER_DB_URL": UNREACHABLE})
    said = [r.getMessage() for r in caplog.records if "PACKLOOP_TOKEN_PEPPER" in r.getMessage()]
    assert len(said) == (2 if warned else 0), said


def test_a_placeholder_pepper_is_refused_naming_the_variable(offline) -> None:
    """infra/.env.example's change-me was taken as the pepper."""
    for placeholder in ("change-me", "CHANGEME", "secret", "<secret>"):
        result = gateway({"PACKLOOP_TOKEN_PEPPER": placeholder})
        assert result.exit_code == 1, result.output
        assert "PACKLOOP_TOKEN_PEPPER is a placeholder" in result.output
        # one line per problem, without the value given or pydantic's links
        assert f"'{placeholder}'" not in result.output and "pydantic.dev" not in result.output
    assert not offline


def test_a_blank_pepper_is_refused_and_a_bad_number_names_its_variable(offline) -> None:
    """A pepper of white space was taken as a secret, without the warning an unset one
    gets; a bad setting's error was pydantic's dump, value, links and all."""
    result = gateway({"PACKLOOP_TOKEN_PEPPER": "   "})
    assert result.exit_code == 1 and "PACKLOOP_TOKEN_PEPPER is only white space" in (
        result.output)
    result = gateway({"PACKLOOP_KAFKA_SESSION_TIMEOUT_MS": "soon"})
    assert result.exit_code == 1
    assert "invalid PACKLOOP_KAFKA_SESSION_TIMEOUT_MS: Input should be a valid integer" in (
        result.output)
    assert "soon" not in result.output and "pydantic.dev" not in result.output
    assert not offline


def peer_seen(config: uvicorn.Config) -> tuple[str, int]:
    """The client address an app behind ``config`` sees for a request from 127.0.0.1
    that claims to come from 203.0.113.9."""
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["client"])

    config.app = app
    config.load()
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": "/", "raw_path": b"/",
             "query_string": b"", "root_path": "", "server": ("127.0.0.1", 8080),
             "client": ("127.0.0.1", 50000),
             "headers": [(b"host", b"gw"), (b"x-forwarded-for", b"203.0.113.9")]}
    asyncio.run(config.loaded_app(scope, None, None))
    [client] = seen
    return client[0], client[1]


def test_x_forwarded_for_is_believed_only_from_named_proxies(offline) -> None:
    """Before: uvicorn's default believed X-Forwarded-For from 127.0.0.1, so a local
    process chose the address its failed tokens counted against."""
    assert gateway({}).exit_code == 0
    assert peer_seen(offline[-1])[0] == "127.0.0.1"
    assert gateway({"PACKLOOP_FORWARDED_ALLOW_IPS": "127.0.0.1"}).exit_code == 0
    assert peer_seen(offline[-1])[0] == "203.0.113.9"
    assert gateway({"PACKLOOP_FORWARDED_ALLOW_IPS": "10.0.0.0/8"}).exit_code == 0
    assert peer_seen(offline[-1])[0] == "127.0.0.1"


def test_kafka_errors_are_throttled_but_audit_lines_are_not() -> None:
    """Before: during a broker outage the gateway logged kafka-python's same ERROR lines
    unthrottled (196 lines in 30 s; the planner 110), where the worker logs each once per
    10 s. The service's own lines (one audit line per token use) are all kept."""
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    code = textwrap.dedent("""
        import logging
        from services.cli.serve import _logging
        _logging("info")
        for _ in range(200):
            logging.getLogger("kafka.conn").error("Connect attempt to node 1 failed")
            logging.getLogger("kafka.client").error("Unable to bootstrap")
        for _ in range(3):
            logging.getLogger("packloop.audit").info("gateway hub H01 token t1 ok")
        _logging("info")  # a second call adds no second filter, and none is lost
        logging.getLogger("kafka.conn").error("Connect attempt to node 1 failed")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert sum("kafka.conn" in line for line in lines) == 1, lines
    assert sum("kafka.client" in line for line in lines) == 1, lines
    assert sum("packloop.audit" in line for line in lines) == 3, lines


@pytest.mark.parametrize("command, variable", [("gateway", "PACKLOOP_GATEWAY_PORT"),
                                               ("planner", "PACKLOOP_PLANNER_PORT")])
def test_a_port_in_use_is_one_line_before_kafka_is_asked(offline, monkeypatch, command,
                                                         variable) -> None:
    """The gateway printed its URL, asked Kafka, logged "startup complete" and then ended
    in uvicorn's own [Errno 98] lines, exit 3; the worker said it in one line at once."""
    import socket

    def no_kafka(settings):
        raise AssertionError("went on to Kafka with its port taken")

    monkeypatch.setattr(services.cli.serve, "check_kafka", no_kafka)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        r = CliRunner().invoke(cli, [command, "--port", str(port)], env={variable: "1"})
    assert r.exit_code == 1, r.output
    assert f"port {port} on 127.0.0.1 is in use by another process" in r.output
    assert f"--port or {variable}" in r.output and offline == []
