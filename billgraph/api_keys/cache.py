"""Principals by secret hash for a few seconds, so that most requests skip the key's lookup.

A revoked key must stop working at once, on every replica. So the cache only holds keys while
revocations reach this process (`Revocations.delivered`: PostgreSQL's listener is connected;
never with the in-process broker, which does not reach other processes):
- a key revoked here is forgotten when its unit commits, before the revoker is answered;
- a key revoked elsewhere is forgotten when its event arrives (LISTEN/NOTIFY);
- if the listener is lost, everything is forgotten and nothing is cached until it is back;
- a lookup that raced with a revocation is not cached: each revocation moves `generation`,
  and a principal read before the move is not stored after it.
"""

import time
from collections import OrderedDict
from typing import Protocol

from billgraph.api_keys.service import Principal

# How long a cached key is believed without asking the database. Revocations do not wait
# for it: they evict at once. It bounds what an undelivered revocation could cost.
CACHE_SECONDS = 2.0
MAX_KEYS = 10_000


class Revocations(Protocol):
    """Where revocations arrive (the event broker)."""

    @property
    def delivered(self) -> bool:
        """Whether every revocation, wherever committed, reaches this process now."""
        ...


class PrincipalCache:
    def __init__(self, revocations: Revocations, *, seconds: float | None = None) -> None:
        self._revocations = revocations
        self._seconds = CACHE_SECONDS if seconds is None else seconds
        # secret hash -> (principal, monotonic time it expires)
        self._entries: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self.generation = 0

    def get(self, secret_hash: str) -> Principal | None:
        if not self._revocations.delivered:
            return None
        found = self._entries.get(secret_hash)
        if found is None:
            return None
        principal, expires = found
        if time.monotonic() >= expires:
            del self._entries[secret_hash]
            return None
        return principal

    def put(self, secret_hash: str, principal: Principal, generation: int) -> None:
        """Cache `principal`, read from the database when `generation` was current."""
        if generation != self.generation or not self._revocations.delivered:
            return  # a revocation came in meanwhile, or would not come in
        self._entries[secret_hash] = (principal, time.monotonic() + self._seconds)
        self._entries.move_to_end(secret_hash)
        if len(self._entries) > MAX_KEYS:
            self._entries.popitem(last=False)

    def revoked(self, api_key_id: int) -> None:
        """A key was revoked (committed): forget it."""
        self.generation += 1
        for secret_hash, (principal, _) in list(self._entries.items()):
            if principal.api_key.id == api_key_id:
                del self._entries[secret_hash]

    def clear(self) -> None:
        """Revocations may have been missed (the listener was lost): forget every key."""
        self.generation += 1
        self._entries.clear()
