"""hub_reachable: offline mode trusts the cache; otherwise one TCP connection to the endpoint's host on 443."""

import contextlib
import socket

import pytest

from bertnpu.model import hub


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    hub.hub_reachable.cache_clear()
    yield
    hub.hub_reachable.cache_clear()


def test_offline_mode_never_connects(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: pytest.fail("connected in offline mode"))
    assert hub.hub_reachable() is True


@pytest.mark.parametrize("endpoint,host", [(None, "huggingface.co"), ("https://hf-mirror.example.org/path", "hf-mirror.example.org")])
def test_connects_to_the_endpoint_host(monkeypatch, endpoint, host):
    if endpoint:
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
    calls = []

    def connect(address, timeout):
        calls.append((address, timeout))
        return contextlib.nullcontext()

    monkeypatch.setattr(socket, "create_connection", connect)
    assert hub.hub_reachable(timeout=1.5) is True
    assert calls == [((host, 443), 1.5)]


def test_unreachable_is_false(monkeypatch):
    def refuse(address, timeout):
        raise ConnectionRefusedError(111, "refused")

    monkeypatch.setattr(socket, "create_connection", refuse)
    assert hub.hub_reachable() is False
