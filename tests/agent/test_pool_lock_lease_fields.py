"""The Lease fields a pool lock reads and writes: its name, MicroTime stamps, who holds it when."""

from __future__ import annotations

from agent.actuate.pool_lock import epoch_of_micro_time, holder_of, lease_name, micro_time

T = 1_795_000_000.25


def lease(holder: str | None, *, renewed: float = T, duration: int = 15) -> dict:
    spec = {"renewTime": micro_time(renewed), "leaseDurationSeconds": duration}
    if holder is not None:
        spec["holderIdentity"] = holder
    return {"spec": spec}


def test_lease_names_are_dns_subdomains_per_pool() -> None:
    """Pool ids keep their letters; anything else becomes a dash; no leading/trailing punctuation."""
    assert lease_name("np-cpu") == "ray-ack-scaler.np-cpu"
    assert lease_name("NP_GPU/1") == "ray-ack-scaler.np-gpu-1"


def test_micro_time_round_trips() -> None:
    """Stamps are RFC3339 with microseconds and Z, and parse back to the same instant."""
    assert micro_time(T).endswith(".250000Z")
    assert epoch_of_micro_time(micro_time(T)) == T
    assert epoch_of_micro_time("not a time") is None


def test_a_lease_is_held_until_renew_time_plus_duration() -> None:
    """Held by its holder inside the duration; free after it, or with no holder."""
    assert holder_of(lease("head-a"), now=T + 14.9) == "head-a"
    assert holder_of(lease("head-a"), now=T + 15.0) == ""
    assert holder_of(lease(None), now=T) == ""
    assert holder_of({"spec": {"holderIdentity": "head-a"}}, now=T) == ""
