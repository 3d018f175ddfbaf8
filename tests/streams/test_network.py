"""Network reference data: the sample county, threshold merging and ownership checks."""

from __future__ import annotations

import copy
import json

import orjson
import pytest

from streams.events import Material, parse_hub_event
from streams.network import (
    SAMPLE_NETWORK_PATH,
    NetworkError,
    load_network,
    network_from_dict,
)
from tests.streams.helpers import SHIPMENT


@pytest.fixture(scope="module")
def raw() -> dict:
    return json.loads(SAMPLE_NETWORK_PATH.read_text(encoding="utf-8"))


def test_sample_county_shape() -> None:
    """The bundled county has 20 township hubs and about 390 villages, each on a known hub."""
    network = load_network()
    assert len(network.hubs) == 20
    assert 370 <= len(network.villages) <= 410
    assert all(v.hub_id in network.hubs for v in network.villages.values())
    assert network.timezone.key == "Asia/Shanghai"
    for village in network.villages.values():  # inside Suichang's rough extent
        assert 28.1 < village.lat < 28.9 and 118.7 < village.lon < 119.6


def test_thresholds_merge_key_by_key(raw: dict) -> None:
    """A village's own thresholds override the defaults one key at a time."""
    data = copy.deepcopy(raw)
    village = data["villages"][0]
    village["thresholds"] = {"material_grams": {"plastic_film": 3000}}
    network = network_from_dict(data)
    merged = network.villages[village["village_id"]].thresholds
    assert merged.material_grams == {Material.PLASTIC_FILM: 3000}
    assert merged.outstanding_grams == data["defaults"]["thresholds"]["outstanding_grams"]
    assert merged.max_age_hours == data["defaults"]["thresholds"]["max_age_hours"]


def test_check_event_enforces_village_ownership() -> None:
    """An event's hub_id must be its village's hub; unknown villages are named."""
    network = load_network()
    ok = parse_hub_event(orjson.dumps(SHIPMENT))
    assert network.check_event(ok) is None
    wrong_hub = parse_hub_event(orjson.dumps({**SHIPMENT, "hub_id": "H02"}))
    problem = network.check_event(wrong_hub)
    assert problem is not None and problem.field == "hub_id" and "H01" in str(problem)
    unknown = parse_hub_event(orjson.dumps({**SHIPMENT, "village_id": "H01-V999"}))
    problem = network.check_event(unknown)
    assert problem is not None and problem.field == "village_id"


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (lambda d: d["villages"][0].update(hub_id="H99"), "villages.0.hub_id"),
        (lambda d: d["villages"][1].update(lat=123), "villages.1.lat"),
        (lambda d: d.update(timezone="Mars/Olympus"), "timezone"),
        (lambda d: d["villages"].append(dict(d["villages"][0])), "duplicate village_id"),
    ],
)
def test_bad_network_files_name_the_path(raw: dict, mutate, words: str) -> None:
    """A broken reference data file is refused with the path of the problem."""
    data = copy.deepcopy(raw)
    mutate(data)
    with pytest.raises(NetworkError, match=words.replace(".", r"\.")):
        network_from_dict(data)


def test_yaml_network_file(tmp_path, raw: dict) -> None:
    """PACKLOOP_NETWORK may name a YAML file too."""
    import yaml

    path = tmp_path / "county.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    assert len(load_network(path).villages) == len(raw["villages"])


def test_a_yaml_county_under_a_json_name_is_read(tmp_path) -> None:
    """Deployments mount the county's file at one path, network.json, whichever format it
    is in: a YAML file there was read as JSON and refused (a review of infra/). Text that
    is neither still fails with the JSON parser's message."""
    import json as _json

    import yaml as _yaml

    from streams.network import SAMPLE_NETWORK_PATH, NetworkError, read_network_file

    data = _json.loads(SAMPLE_NETWORK_PATH.read_text())
    path = tmp_path / "network.json"
    path.write_text(_yaml.safe_dump(data, allow_unicode=True))
    assert read_network_file(path) == data
    load_network(path)
    path.write_text("{not: [json")
    with pytest.raises(NetworkError, match="not valid JSON/YAML: Expecting"):
        read_network_file(path)
