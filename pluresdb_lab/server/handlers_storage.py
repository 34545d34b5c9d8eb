"""Storage: statistics, compaction, flush, backups, import and export (server-side paths)."""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from pluresdb_lab.engine import restore_backup, verify_backup
from pluresdb_lab.server.api import ApiHandler
from pluresdb_lab.server.errors import bad_request


def _text(body: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise bad_request(f"{key!r} is a non-empty string")
    return value


class StatsHandler(ApiHandler):
    """GET: `storage_stats()`."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.call(self.db.storage_stats))


class CompactHandler(ApiHandler):
    """POST {"level": n|null}: compact now."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        self.reply(await self.call(self.db.compact, self.json_object().get("level")))


class FlushHandler(ApiHandler):
    """POST: write the memtable into a segment."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        await self.call(self.db.flush)
        self.reply({})


class BackupsHandler(ApiHandler):
    """GET ?dest=: backups in a folder. POST {"dest", "incremental"}: back up now."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply({"backups": await self.call(self.db.backups, self.required_arg("dest"))})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.json_object()
        dest = _text(body, "dest")
        incremental = bool(body.get("incremental", False))
        self.reply(await self.call(self.db.backup, dest, incremental=incremental))


class VerifyBackupHandler(ApiHandler):
    """POST {"path"}: check every checksum of a backup."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        self.reply(await self.call(verify_backup, _text(self.json_object(), "path")))


class RestoreBackupHandler(ApiHandler):
    """POST {"path", "into", "overwrite"}: restore a backup into another folder."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.json_object()
        path, into = _text(body, "path"), _text(body, "into")
        where = await self.call(
            restore_backup, path, into, overwrite=bool(body.get("overwrite", False))
        )
        self.reply({"path": str(where)})


class ImportHandler(ApiHandler):
    """POST {"path", "format", "type", "id_field", "mapping"}: import a file, all or nothing."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.json_object()
        mapping = body.get("mapping")
        if mapping is not None and not isinstance(mapping, dict):
            raise bad_request("'mapping' is an object {source column: field name or null}")
        imported = await self.call(
            self.db.import_file,
            _text(body, "path"),
            _text(body, "format", required=False),
            type=body.get("type"),
            id_field=body.get("id_field"),
            mapping=mapping,
        )
        self.reply({"imported": imported})


class ExportHandler(ApiHandler):
    """POST {"path", "format", "type", "query"}: export nodes or a SQL result to a file."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.json_object()
        exported = await self.call(
            self.db.export,
            _text(body, "path"),
            _text(body, "format", required=False),
            type=body.get("type"),
            query=_text(body, "query", required=False),
        )
        self.reply({"exported": exported})
