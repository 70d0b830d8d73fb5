"""`make up` with <NAME>_REPLICAS: one process per replica, and every replica's URL handed on."""

from __future__ import annotations

from local import stack


def test_replicas_get_their_own_process_port_and_url(monkeypatch):
    monkeypatch.setenv("PRICE_REPLICAS", "2")
    monkeypatch.delenv("PRICE_FUNCTION_PORT", raising=False)
    monkeypatch.delenv("METADATA_REPLICAS", raising=False)
    by_name = {p.name: p for p in stack.processes()}
    assert by_name["price"].argv[-1] == "8081"
    assert by_name["price-2"].argv[-1] == str(8081 + stack.REPLICA_PORT_STEP)
    assert by_name["price-2"].env["K_SERVICE"] == "price"  # a replica names its logs and metrics as the function
    assert "metadata-2" not in by_name
    env = stack.child_environment("127.0.0.1:9092", "postgresql://u:p@h/db")
    assert env["PRICE_FUNCTION_URL"] == "http://127.0.0.1:8081,http://127.0.0.1:8181"
    assert env["METADATA_FUNCTION_URL"] == "http://127.0.0.1:8082"


def test_one_replica_by_default(monkeypatch):
    monkeypatch.delenv("PRICE_REPLICAS", raising=False)
    assert [p.name for p in stack.processes() if p.name.startswith("price")] == ["price"]
