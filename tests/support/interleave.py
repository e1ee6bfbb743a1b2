"""Deterministic interleaving of concurrent agents, one outside call at a time.

Each agent's clients are wrapped in `Gated`: before a call goes out, the agent waits for its turn.
A turn is given only when every agent still working stands at a gate, so what runs in between
(an agent's own logic, a lock's back-off sleep) cannot reorder anything: the order of calls is
the scheduler's choice alone (seeded random, or strict alternation), whatever the machine's load."""

from __future__ import annotations

import asyncio
import inspect
import random
from typing import Any


class Interleaver:
    """Hands out turns to `agents`; `rng` picks among those waiting, else they alternate."""

    def __init__(self, agents: list[str], *, rng: random.Random | None = None) -> None:
        self._order = list(agents)
        self._rng = rng
        self._waiting: dict[str, asyncio.Future[None]] = {}
        self.calls: list[tuple[str, str]] = []  # (agent, call) in the order they went out
        self.rearm()

    def rearm(self) -> None:
        """Every agent is working again (a new round); alternation starts with the first."""
        self._active = set(self._order)
        self._last = self._order[-1]

    async def turn(self, agent: str, call: str) -> None:
        """Wait until `agent` may make `call` (one call in flight per agent)."""
        assert agent not in self._waiting, f"{agent} made two calls at once"
        future = asyncio.get_running_loop().create_future()
        self._waiting[agent] = future
        self._release()
        await future
        self.calls.append((agent, call))

    def leave(self, agent: str) -> None:
        """`agent` is done: nobody waits for it any more."""
        self._active.discard(agent)
        self._release()

    def _release(self) -> None:
        if not self._waiting or set(self._waiting) != self._active:
            return  # someone is still between calls
        waiting = sorted(self._waiting, key=self._order.index)
        if self._rng is not None:
            chosen = self._rng.choice(waiting)
        else:  # alternate: the next one after whoever went last
            after = self._order[(self._order.index(self._last) + 1) % len(self._order)]
            chosen = after if after in waiting else waiting[0]
        self._last = chosen
        self._waiting.pop(chosen).set_result(None)


class Gated:
    """`inner` with each coroutine method waiting for `agent`'s turn first; the rest unchanged."""

    def __init__(self, inner: Any, interleaver: Interleaver, agent: str) -> None:
        self._inner = inner
        self._interleaver = interleaver
        self._agent = agent

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if not inspect.iscoroutinefunction(attribute):
            return attribute

        async def call(*args: Any, **kwargs: Any) -> Any:
            await self._interleaver.turn(self._agent, name)
            return await attribute(*args, **kwargs)

        return call
