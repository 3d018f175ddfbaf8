"""The one settings object: environment names, secrets, and the README's table."""

from __future__ import annotations

from pathlib import Path

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
    monkeypatch.setenv("PACKLOOP_KAFKA_SASL_PASSWORD", "hunter2-secret")
    settings = Settings()
    assert "hunter2-secret" not in repr(settings)
    assert "hunter2-secret" not in repr(settings.kafka())
    assert settings.kafka().sasl_password == "hunter2-secret"
