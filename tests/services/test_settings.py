"""The one settings object: environment names, secrets, and the README's table."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from services.settings import Settings, get_settings, settings_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_lists_every_setting() -> None:
    """The README's configuration table is the generated one (python -m services.settings)."""
    text = README.read_text(encoding="utf-8")
    start = text.index("<!-- settings:start")
    body = text[text.index("\n", start) + 1 : text.index("<!-- settings:end -->")].strip()
    assert body == settings_table()


def test_environment_is_read_with_the_prefix(monkeypatch) -> None:
    """PACKLOOP_* variables set the fields; flags override them through get_settings."""
    monkeypatch.setenv("PACKLOOP_KAFKA_BOOTSTRAP", "k1:9092,k2:9092")
    monkeypatch.setenv("PACKLOOP_TOPIC_PREFIX", "county-a.")
    settings = get_settings()
    assert settings.kafka().servers == ["k1:9092", "k2:9092"]
    assert settings.topics().hub_events == "county-a.hub-events"
    assert get_settings(kafka_bootstrap="x:1").kafka_bootstrap == "x:1"


def test_password_never_printed(monkeypatch) -> None:
    """The SASL password is a secret: not in the settings' repr nor the connection's."""
    monkeypatch.setenv("PACKLOOP_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("PACKLOOP_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("PACKLOOP_KAFKA_SASL_USERNAME", "packloop")
    monkeypatch.setenv("PACKLOOP_KAFKA_SASL_PASSWORD", "hunter2-secret")
    settings = Settings()
    assert "hunter2-secret" not in repr(settings)
    assert "hunter2-secret" not in repr(settings.kafka())
    assert settings.kafka().sasl_password == "hunter2-secret"


@pytest.mark.parametrize(("env", "message"), [
    ({"PACKLOOP_KAFKA_SASL_USERNAME": "u", "PACKLOOP_KAFKA_SASL_PASSWORD": "p"},
     "PACKLOOP_KAFKA_SASL_USERNAME and PACKLOOP_KAFKA_SASL_PASSWORD set, but "
     "PACKLOOP_KAFKA_SECURITY_PROTOCOL is PLAINTEXT"),
    ({"PACKLOOP_KAFKA_SECURITY_PROTOCOL": "sasl_ssl", "PACKLOOP_KAFKA_SASL_USERNAME": "u",
      "PACKLOOP_KAFKA_SASL_PASSWORD": "p"}, "PACKLOOP_KAFKA_SASL_MECHANISM is not set"),
    ({"PACKLOOP_KAFKA_SECURITY_PROTOCOL": "SSL", "PACKLOOP_KAFKA_SASL_MECHANISM": "PLAIN"},
     "PACKLOOP_KAFKA_SASL_MECHANISM is set, but PACKLOOP_KAFKA_SECURITY_PROTOCOL is SSL"),
    ({"PACKLOOP_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "PACKLOOP_KAFKA_SASL_MECHANISM": "GSSAPI",
      "PACKLOOP_KAFKA_SASL_USERNAME": "u", "PACKLOOP_KAFKA_SASL_PASSWORD": "p"},
     "'GSSAPI' is not one of PLAIN"),
    ({"PACKLOOP_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "PACKLOOP_KAFKA_SASL_MECHANISM": "PLAIN"},
     "SASL needs PACKLOOP_KAFKA_SASL_USERNAME"),
    ({"PACKLOOP_KAFKA_SECURITY_PROTOCOL": "TLS"}, "'TLS' is not one of PLAINTEXT"),
])
def test_kafka_security_settings_that_would_not_take_effect_are_refused(monkeypatch, env,
                                                                        message) -> None:
    """SASL credentials with PLAINTEXT (the default), or without a mechanism, connected
    without authenticating and said nothing (an outside audit of infra/)."""
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ValidationError, match=message):
        get_settings()


def test_sasl_settings_that_take_effect_reach_the_clients(monkeypatch) -> None:
    monkeypatch.setenv("PACKLOOP_KAFKA_SECURITY_PROTOCOL", "sasl_plaintext")
    monkeypatch.setenv("PACKLOOP_KAFKA_SASL_MECHANISM", "plain")
    monkeypatch.setenv("PACKLOOP_KAFKA_SASL_USERNAME", "u")
    monkeypatch.setenv("PACKLOOP_KAFKA_SASL_PASSWORD", "p")
    kw = get_settings().kafka().kafka_python_kwargs()
    # upper case, as the clients' enums want it (Faust refused "scram-sha-512")
    assert kw["security_protocol"] == "SASL_PLAINTEXT" and kw["sasl_mechanism"] == "PLAIN"
    monkeypatch.setenv("PACKLOOP_KAFKA_SASL_MECHANISM", "scram-sha-512")
    creds = get_settings().kafka().faust_credentials()
    assert str(creds.mechanism.value) == "SCRAM-SHA-512"
    assert kw["sasl_plain_username"] == "u" and kw["sasl_plain_password"] == "p"


@pytest.mark.parametrize("placeholder", ["change-me", "Change_Me", "changeme", "CHANGE ME",
                                         "secret", "<secret>", "password", "changeit"])
def test_a_placeholder_pepper_is_refused_naming_the_variable(monkeypatch, placeholder) -> None:
    """infra/.env.example's ``change-me`` was used as the pepper: public, so token hashes
    could be tested offline as if there were none."""
    monkeypatch.setenv("PACKLOOP_TOKEN_PEPPER", placeholder)
    with pytest.raises(ValidationError, match="PACKLOOP_TOKEN_PEPPER is a placeholder"):
        get_settings()


def test_a_real_pepper_or_none_is_taken(monkeypatch) -> None:
    monkeypatch.setenv("PACKLOOP_TOKEN_PEPPER", "k7Qv-change-me-not")
    pepper = get_settings().token_pepper
    assert pepper is not None and pepper.get_secret_value() == "k7Qv-change-me-not"
    monkeypatch.delenv("PACKLOOP_TOKEN_PEPPER")
    assert get_settings().token_pepper is None


def test_one_replication_factor_for_topics_and_changelogs(monkeypatch) -> None:
    """PACKLOOP_REPLICATION_FACTOR: 1 by default (the embedded broker has one node), and the
    workers' changelogs get the same as the topics `topics create` makes."""
    assert get_settings().worker_options(4).replication_factor == 1
    monkeypatch.setenv("PACKLOOP_REPLICATION_FACTOR", "3")
    assert get_settings().replication_factor == 3
    assert get_settings().worker_options(4).replication_factor == 3
    monkeypatch.setenv("PACKLOOP_REPLICATION_FACTOR", "0")
    with pytest.raises(ValidationError, match="replication_factor"):
        get_settings()


@pytest.mark.parametrize("variable", ["PACKLOOP_DISPATCH_AT", "PACKLOOP_DISPATCH_SHIFT_START"])
@pytest.mark.parametrize("value", ["24:00", "7:5", "18:00+08:00", "１８:００"])
def test_a_time_of_day_that_is_not_hh_mm_is_refused_in_words(monkeypatch, variable,
                                                            value) -> None:
    """The message was the pattern itself (`String should match pattern '^$|^([01]…`)."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as e:
        get_settings()
    assert "is not a local time of day HH:MM from 00:00 to 23:59" in str(e.value)
    assert "should match pattern" not in str(e.value)
    monkeypatch.setenv(variable, "18:00")
    assert getattr(get_settings(), variable.removeprefix("PACKLOOP_").lower()) == "18:00"


def test_database_and_service_urls_are_printed_without_their_passwords() -> None:
    """The URLs are plain strings: a printed settings object showed the token database's
    password (an outside audit)."""
    settings = Settings(token_db_url="postgresql+psycopg://packloop:S3cretPw@db/packloop",
                        ledger_db_url="postgresql+psycopg://packloop@db/l?password=S3cretPw",
                        gateway_url="https://hub:S3cretPw@gw.example:8443")
    shown = repr(settings)
    assert "S3cretPw" not in shown and "gw.example" in shown and "db/packloop" in shown
    assert settings.token_db_url.endswith(":S3cretPw@db/packloop")  # the value itself kept
