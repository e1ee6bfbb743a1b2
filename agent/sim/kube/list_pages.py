"""LIST pagination: the snapshots behind continue tokens, so every page of one LIST comes from
the same consistent view, and the tokens themselves (opaque to clients)."""

from __future__ import annotations

import base64
import binascii
import itertools
import json
from collections import OrderedDict
from typing import Any

from agent.sim.kube.store import ApiError

# a snapshot lives this long (etcd compacts about every 5 minutes) or until history compaction
SNAPSHOT_SECONDS = 300.0
SNAPSHOTS_KEPT = 64
CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this "
    "response to retrieve the remainder of the results. Continuing with the provided token "
    "results in an inconsistent list - objects that were created, modified, or deleted "
    "between the time the first chunk was returned and now may show up in the list."
)


class Snapshots:
    """The filtered, sorted items of recent paginated LISTs, by snapshot id."""

    def __init__(self) -> None:
        self._entries: OrderedDict[int, tuple[float, int, list[dict[str, Any]]]] = OrderedDict()
        self._ids = itertools.count(1)

    def keep(self, rv: int, items: list[dict[str, Any]], now: float) -> int:
        snapshot_id = next(self._ids)
        self._entries[snapshot_id] = (now, rv, items)
        while len(self._entries) > SNAPSHOTS_KEPT:
            self._entries.popitem(last=False)
        return snapshot_id

    def find(
        self, snapshot_id: int, *, oldest_rv: int, now: float
    ) -> tuple[int, list[dict[str, Any]]]:
        """(rv, items) of a live snapshot; 410 Expired if it is gone or older than the history."""
        entry = self._entries.get(snapshot_id)
        if entry is None or entry[1] < oldest_rv or now - entry[0] > SNAPSHOT_SECONDS:
            self._entries.pop(snapshot_id, None)
            raise ApiError(410, "Expired", CONTINUE_EXPIRED)
        return entry[1], entry[2]


def encode_continue(snapshot_id: int, rv: int, offset: int) -> str:
    raw = json.dumps({"v": "sim/v1", "id": snapshot_id, "rv": rv, "start": offset}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, int]:
    """(snapshot id, offset) of a token; 400 if it is not one of ours."""
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded))
        return int(data["id"]), int(data["start"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise ApiError(
            400, "BadRequest", "continue key is not valid: illegal base64 data"
        ) from None
