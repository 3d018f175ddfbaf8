"""The infra tests' binary guard: skip where a tool is missing, fail where it is required."""

from __future__ import annotations

import shutil

import pytest

from tests.infra.tools import TOOL_PACKAGES, requires_binary, tool


@pytest.fixture
def no_binaries(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("PACKLOOP_REQUIRE_BINARIES", raising=False)
    return monkeypatch


@pytest.mark.parametrize("name", sorted(TOOL_PACKAGES))
def test_a_missing_binary_skips_naming_its_package(no_binaries: pytest.MonkeyPatch,
                                                   name: str) -> None:
    mark = requires_binary(name).mark
    assert mark.name == "skipif" and mark.args == (True,)
    assert f"'{TOOL_PACKAGES[name]}'" in mark.kwargs["reason"]


def test_required_binaries_are_not_skipped_but_fail(no_binaries: pytest.MonkeyPatch) -> None:
    no_binaries.setenv("PACKLOOP_REQUIRE_BINARIES", "1")
    assert requires_binary("promtool").mark.args == (False,)
    with pytest.raises(pytest.fail.Exception, match="'prometheus'"):
        tool("promtool")


def test_a_present_binary_is_not_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: f"/opt/bin/{name}")
    monkeypatch.delenv("PACKLOOP_REQUIRE_BINARIES", raising=False)
    assert requires_binary("amtool").mark.args == (False,)
    assert tool("amtool") == "/opt/bin/amtool"
