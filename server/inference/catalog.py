"""A front-end's model table: the inference process's, without the weights.

The inference process loads, verifies, warms and batches every version; a front-end validates
calls and builds answers, for which a version's manifest and measured facts are enough
(``server.signatures``). ``RemoteRegistry`` turns each table the inference process publishes into
a ``ModelTable`` of such versions, each with a ``RemoteBatcher`` that names the version by its
wire id, swaps it in with one reference assignment (so every call resolves against one table),
then acknowledges the generation, which lets the inference process close versions no table
names any more.

While the inference process is away, the last table still resolves names (calls then fail
UNAVAILABLE at their submit, not NOT_FOUND), but every configured model reads as missing, so
readiness health says NOT_SERVING until the restarted process sends its table.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from modelcore.manifest import Manifest
from server.inference.arena import Arena
from server.inference.link import InferenceLink, RemoteBatcher
from server.logs import get_logger
from server.registry import ModelTable, ServedVersion
from server.signatures import AudioSignature, signature_of

log = get_logger("server.inference.catalog")
UNAVAILABLE_REASON = "the inference process is not connected (starting or restarting)"
RELOAD_TIMEOUT_SECONDS = 300.0


class RemoteRegistry:
    """What the servicers call a registry (``resolve``, ``table``, ``reload``, ``close``), fed
    by the inference process. ``on_change`` (set by the app) hears of every new table."""

    def __init__(self, path: str, worker: int, arena_bytes: int) -> None:
        self._arena = Arena(arena_bytes)
        self.link = InferenceLink(path, worker, self._arena, self._apply, self._disconnected)
        self._table = ModelTable(versions={}, defaults={})
        self._published = self._table  # the inference process's last table, as it sent it
        self._by_id: dict[int, ServedVersion] = {}
        self._generation = 0
        self._loaded = asyncio.Event()  # a table from a process whose first load pass is over
        self._changed = asyncio.Condition()
        self.on_change: Callable[[ModelTable], Awaitable[None]] | None = None
        self._dirty = asyncio.Event()
        self._announcer: asyncio.Task[None] | None = None

    @property
    def table(self) -> ModelTable:
        return self._table

    def resolve(
        self, name: str, version: str, fields: tuple[str, str] = ("model.name", "model.version")
    ) -> ServedVersion:
        return self._table.resolve(name, version, fields)

    def start(self) -> None:
        self.link.start()
        self._announcer = asyncio.get_running_loop().create_task(
            self._announce_forever(), name="table-announcer"
        )

    async def first_table(self) -> ModelTable:
        """Waits for the inference process's table after its first load pass."""
        await self._loaded.wait()
        return self._table

    async def reload(self) -> ModelTable:
        """Asks the inference process to rescan the repository; its next table comes back."""
        generation = self._generation
        if not self.link.request_reload():
            return self._table
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: self._generation > generation),
                RELOAD_TIMEOUT_SECONDS,
            )
        return self._table

    async def close(self) -> None:
        if self._announcer is not None:
            self._announcer.cancel()
        await self.link.close()
        self._arena.close()

    def _apply(self, message: dict[str, Any]) -> None:
        versions: dict[str, dict[int, ServedVersion]] = {}
        by_id: dict[int, ServedVersion] = {}
        for entry in message["versions"]:
            served = self._by_id.get(entry["id"]) or self._build(entry)
            versions.setdefault(served.name, {})[served.version] = served
            by_id[entry["id"]] = served
        table = ModelTable(
            versions=versions,
            defaults={name: int(version) for name, version in message["defaults"].items()},
            missing=dict(message["missing"]),
        )
        self._by_id, self._published, self._table = by_id, table, table
        self._generation = int(message["generation"])
        self.link.acknowledge(self._generation)
        if message["loaded"]:
            self._loaded.set()
        self._dirty.set()

    def _build(self, entry: dict[str, Any]) -> ServedVersion:
        manifest = Manifest.from_dict(entry["manifest"])
        signature = signature_of(manifest, entry["facts"])
        out_columns = len(signature.labels) + (1 if isinstance(signature, AudioSignature) else 0)
        return ServedVersion(
            name=entry["name"],
            version=int(entry["version"]),
            kind=manifest.kind,
            manifest=manifest,
            signature=signature,
            batcher=RemoteBatcher(self.link, int(entry["id"]), out_columns),
            fingerprint=entry["fingerprint"],
        )

    def _disconnected(self) -> None:
        published = self._published
        names = set(published.versions) | set(published.missing)
        self._table = ModelTable(
            versions=published.versions,
            defaults=published.defaults,
            missing=dict.fromkeys(names, UNAVAILABLE_REASON),
        )
        self._dirty.set()

    async def _announce_forever(self) -> None:
        """One task tells the app of changes, always the latest table, never out of order."""
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            async with self._changed:
                self._changed.notify_all()
            if self.on_change is not None and self._loaded.is_set():  # as a single server,
                # whose health speaks only once its first load pass is over
                await self.on_change(self._table)
