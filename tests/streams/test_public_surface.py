"""The names ``streams`` exports, pinned, and the rule that its users keep to them."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import streams

REPO = Path(__file__).resolve().parents[2]

EXPORTED = [
    "DAY_US",
    "MONTH_BUCKETS_KEPT",
    "DEFAULT_FETCH_MAX_WAIT_MS",
    "DEFAULT_PARTITIONS",
    "DEFAULT_SESSION_TIMEOUT_MS",
    "MAX_EVENT_BYTES",
    "SAMPLE_NETWORK_PATH",
    "AcceptanceLimits",
    "BatchHistogram",
    "ContainerPool",
    "ContainerType",
    "EventError",
    "HubEvent",
    "KafkaConnection",
    "Material",
    "Network",
    "NetworkError",
    "OpenPickup",
    "PackloopCollector",
    "PartitionMarker",
    "PickupCancelled",
    "SeenSet",
    "Topics",
    "Village",
    "VillageState",
    "WorkerOptions",
    "check_occurred_at",
    "create_topics",
    "create_worker",
    "dead_letter_record",
    "decode_raw",
    "event_to_json",
    "id_hash",
    "is_tansu",
    "iter_topic",
    "load_network",
    "parse_hub_event",
    "read_topic",
    "scrape",
    "to_us",
    "valid_month",
]


def _static_imports() -> dict[str, str]:
    """name -> module, from the ``if TYPE_CHECKING:`` block type checkers read."""
    tree = ast.parse((REPO / "streams" / "__init__.py").read_text(encoding="utf-8"))
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom) and imp.module
                for alias in imp.names:
                    found[alias.asname or alias.name] = imp.module
    return found


def test_the_exported_names_are_pinned() -> None:
    """Adding or dropping a public name is a decision: this list changes with it."""
    assert streams.__all__ == EXPORTED


def test_every_exported_name_is_the_object_type_checkers_see() -> None:
    """Names resolve on first use; each must be the very object its typed import names,
    so mypy's view of ``from streams import X`` and the running code agree."""
    static = _static_imports()
    assert sorted(static) == sorted(streams.__all__)
    for name, module in static.items():
        assert getattr(streams, name) is getattr(importlib.import_module(module), name), name
    assert set(streams.__all__) <= set(dir(streams))


def test_an_unknown_name_is_an_attribute_error() -> None:
    """A typo fails like any missing attribute (and ``hasattr`` stays usable)."""
    assert not hasattr(streams, "KafkaConection")
    assert not hasattr(streams, "StreamsWorker")


def test_light_names_do_not_load_faust() -> None:
    """A CLI or HTTP service importing the connection settings must not pay for Faust
    (only a worker needs it)."""
    code = (
        "import sys\n"
        "from streams import KafkaConnection, Topics, load_network, parse_hub_event\n"
        "from streams import AcceptanceLimits, check_occurred_at\n"
        "assert 'faust' not in sys.modules, 'faust loaded'\n"
        "from streams import create_worker\n"
        "assert 'faust' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)


def _imports(path: Path) -> list[tuple[int, str, str]]:
    """(line, module, name) for every ``from M import N`` and ``import M`` in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: list[tuple[int, str, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out += [(node.lineno, node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            out += [(node.lineno, alias.name, "") for alias in node.names]
    return out


def test_services_and_bench_use_no_private_streams_name() -> None:
    """``services`` and ``bench`` may import public modules and names of ``streams``,
    never a ``_private`` one (those may change with no notice)."""
    wrong = []
    for folder in ("services", "bench"):
        for path in sorted((REPO / folder).rglob("*.py")):
            for line, module, name in _imports(path):
                if module.split(".")[0] != "streams":
                    continue
                if any(part.startswith("_") for part in module.split(".")) or name.startswith(
                    "_"
                ):
                    wrong.append(f"{path.relative_to(REPO)}:{line}: {module} {name}")
    assert wrong == []


def test_bench_imports_nothing_from_tests() -> None:
    """Benchmarks run against the installed packages; test code is not part of them."""
    wrong = [
        f"{path.relative_to(REPO)}:{line}: {module}"
        for path in sorted((REPO / "bench").rglob("*.py"))
        for line, module, _name in _imports(path)
        if module.split(".")[0] == "tests"
    ]
    assert wrong == []
