"""The commands that ask a stream worker, at the edges a new user hits: where the worker
is, filters that name what they do not know, and figures a person can read at 80
columns."""

from __future__ import annotations

import io
import re
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from rich.console import Console

from services.cli import cli
from services.cli.worker import print_status, status_contract

CONTAINERS = dict.fromkeys(
    ("issued", "returned", "in_circulation", "damaged", "lost", "overdue"), 3)
STATUS: dict[str, Any] = {
    "villages": {
        "H01-V001": {"generated_grams": {}, "recovered_grams": {},
                     "outstanding_grams": {"tape": 16, "cardboard": 145_224,
                                           "plastic_film": 2_345, "eps_foam": 250,
                                           "paper_fill": 30, "ice_pack": 400},
                     "over_collected_grams": {}, "open_pickup": "P-H01-V001-000017"},
        "H02-V001": {"generated_grams": {}, "recovered_grams": {},
                     "outstanding_grams": {"cardboard": 10}, "over_collected_grams": {},
                     "open_pickup": None},
    },
    "hubs": {"H01": {"containers": {"reusable_crate": CONTAINERS,
                                    "insulated_box": CONTAINERS}},
             "H02": {"containers": {"insulated_box": CONTAINERS}}},
    "pickups": {"requested": 4, "open": 1, "overdue": 0},
    "events": {"applied": 10, "duplicates": 0, "dead_lettered": 1, "rerouted": 0},
}


@pytest.fixture
def asked(monkeypatch) -> list[tuple[str, str | None]]:
    """The worker URLs (and village filters) `status` asked; answers STATUS."""
    calls: list[tuple[str, str | None]] = []

    def fetch(url: str, village: str | None = None, timeout: float = 10.0) -> dict[str, Any]:
        calls.append((url, village))
        return STATUS

    monkeypatch.setattr("services.cli.worker.fetch_status", fetch)
    return calls


def test_an_unknown_village_or_hub_exits_2_naming_it(asked) -> None:
    """Before: `status --village H99-V001` printed county figures and exited 0."""
    runner = CliRunner()
    village = runner.invoke(cli, ["status", "--village", "H99-V001"])
    assert village.exit_code == 2, village.output
    assert "unknown village 'H99-V001'" in village.output and "--village" in village.output
    hub = runner.invoke(cli, ["status", "--hub", "H99"])
    assert hub.exit_code == 2 and "unknown hub 'H99'" in hub.output
    mismatch = runner.invoke(cli, ["status", "--hub", "H02", "--village", "H01-V001"])
    assert mismatch.exit_code == 2 and "belongs to hub 'H01'" in mismatch.output
    assert asked == []  # refused before asking any worker


def test_status_hub_keeps_that_hubs_villages_and_containers(asked) -> None:
    result = CliRunner().invoke(cli, ["status", "--hub", "H01", "--json"])
    assert result.exit_code == 0, result.output
    out = orjson.loads(result.output)
    assert list(out["villages"]) == ["H01-V001"] and list(out["hubs"]) == ["H01"]
    assert set(out) == set(status_contract(STATUS))


def test_worker_url_is_asked(asked, monkeypatch) -> None:
    """--worker-url (also --url), else PACKLOOP_WORKER_URL."""
    runner = CliRunner()
    assert runner.invoke(cli, ["status", "--worker-url", "http://127.0.0.1:26066",
                               "--json"]).exit_code == 0
    monkeypatch.setenv("PACKLOOP_WORKER_URL", "http://w:1")
    assert runner.invoke(cli, ["status", "--village", "H01-V001", "--json"]).exit_code == 0
    assert asked == [("http://127.0.0.1:26066", None), ("http://w:1", "H01-V001")]


def test_nothing_is_cut_at_80_columns() -> None:
    """Whole names and readable masses (16 g, not 0.0 kg), wrapped, never ellipsised."""
    buffer = io.StringIO()
    print_status(status_contract(STATUS), STATUS,
                 console=Console(file=buffer, width=80, color_system=None))
    text = buffer.getvalue()
    assert "…" not in text and "0.0 kg" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    words = set(re.findall(r"[\w.,-]+", text))
    for whole in ("reusable_crate", "insulated_box", "P-H01-V001-000017", "plastic_film",
                  "H01-V001", "145.2", "2.35"):
        assert whole in words, whole
    assert re.search(r"tape 16 g", text)


def test_the_worker_prints_where_to_find_it(monkeypatch) -> None:
    """`packloop worker --web-port P` says which URLs serve its state and metrics."""
    from services.ports import free_port

    port = free_port()  # the worker now checks that nothing listens on it first
    ran: list[str] = []

    def build(settings: Any, web_port: int | None = None) -> Any:
        options = settings.worker_options(4, web_port)
        return SimpleNamespace(options=options, run=ran.append)

    # `streams` re-exports lazily and caches what it imported: patch the name the CLI uses
    monkeypatch.setattr("streams.create_topics", lambda *a, **k: {})
    monkeypatch.setattr("services.cli.worker.build_worker", build)
    result = CliRunner().invoke(cli, ["worker", "--web-port", str(port)])
    assert result.exit_code == 0, result.output
    assert f"http://127.0.0.1:{port}/status" in result.output
    assert f"http://127.0.0.1:{port}/metrics" in result.output
    assert f"--worker-url http://127.0.0.1:{port}" in result.output
    assert ran == ["info"]


@pytest.mark.parametrize("command", [["status"], ["report", "officer"], ["gateway"],
                                     ["planner"]])
def test_every_command_that_asks_a_worker_takes_worker_url(command) -> None:
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0 and "--worker-url" in result.output, command
