"""The `pluresdb` command: serve a database, and storage chores on a database folder."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pluresdb_lab import _wire, default_path, errors
from pluresdb_lab._database import Database
from pluresdb_lab.engine import restore_backup

Command = Callable[[argparse.Namespace], Any]


def _open(args: argparse.Namespace) -> Database:
    return Database(args.data, fsync=args.fsync)


def _serve(args: argparse.Namespace) -> None:
    from pluresdb_lab.server.body import DEFAULT_MAX_BODY_BYTES
    from pluresdb_lab.server.standalone import serve

    mib = args.max_body_mib
    max_body_bytes = DEFAULT_MAX_BODY_BYTES if mib is None else int(mib * 2**20)
    db = _open(args)
    try:
        asyncio.run(
            serve(
                db,
                host=args.host,
                port=args.port,
                token=args.token,
                peers=tuple(args.peer),
                mesh_secret=args.mesh_secret,
                allowed_paths=[path.resolve() for path in args.allow_path],
                max_body_bytes=max_body_bytes,
            )
        )
    finally:
        db.close()


def _positive(raw: str) -> float:
    value = float(raw)
    if not 0 < value < 2**40:  # also refuses NaN and inf
        raise argparse.ArgumentTypeError(f"must be a positive number, got {raw!r}")
    return value


def _stats(args: argparse.Namespace) -> Any:
    with _open(args) as db:
        return db.storage_stats()


def _backup(args: argparse.Namespace) -> Any:
    with _open(args) as db:
        return db.backup(args.dest, incremental=args.incremental)


def _restore(args: argparse.Namespace) -> Any:
    return {"path": restore_backup(args.backup, args.data, overwrite=args.overwrite)}


def _import(args: argparse.Namespace) -> Any:
    with _open(args) as db:
        count = db.import_file(args.file, args.format, type=args.type, id_field=args.id_field)
    return {"imported": count}


def _export(args: argparse.Namespace) -> Any:
    with _open(args) as db:
        return {"exported": db.export(args.file, args.format, type=args.type, query=args.query)}


def _compact(args: argparse.Namespace) -> Any:
    with _open(args) as db:
        return db.compact(args.level)


def parser() -> argparse.ArgumentParser:
    """The argument parser of `pluresdb`."""
    top = argparse.ArgumentParser(prog="pluresdb", description=__doc__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data", type=Path, default=default_path(), help="database folder (default: %(default)s)"
    )
    common.add_argument("--fsync", default="interval", choices=["always", "interval", "off"])
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, run: Command, help: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, parents=[common], help=help, description=help)
        command.set_defaults(run=run)
        return command

    serve = add("serve", _serve, "serve the REST API and mesh endpoint (token-protected)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=34568, help="0 picks a free port")
    serve.add_argument("--token", help="the API token (default: a random one, printed)")
    serve.add_argument("--peer", action="append", default=[], help="a ws:// mesh URL to sync with")
    serve.add_argument("--mesh-secret", help="shared secret that mesh peers must prove")
    serve.add_argument(
        "--allow-path",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="a folder that file paths given over REST (import, export, backups) may lie "
        "in, besides the --data folder; repeatable",
    )
    serve.add_argument(
        "--max-body-mib",
        type=_positive,
        metavar="N",
        help="largest REST request body in MiB; larger ones get 413 (default: 64)",
    )
    add("stats", _stats, "print storage statistics as JSON")
    backup = add("backup", _backup, "back the database up into a folder of backups")
    backup.add_argument("dest", type=Path)
    backup.add_argument("--incremental", action="store_true")
    restore = add("restore", _restore, "restore a backup into the --data folder")
    restore.add_argument("backup", type=Path)
    restore.add_argument("--overwrite", action="store_true")
    for name, run, verb in (("import", _import, "import"), ("export", _export, "export")):
        command = add(name, run, f"{verb} a CSV, JSON, NDJSON, Parquet or Arrow file")
        command.add_argument("file", type=Path)
        command.add_argument("--format")
        command.add_argument("--type")
        if name == "import":
            command.add_argument("--id-field")
        else:
            command.add_argument("--query", help="export the result of this SQL query")
    compact = add("compact", _compact, "compact now (a full compaction unless --level)")
    compact.add_argument("--level", type=int)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run `pluresdb`; errors print their message and exit with status 1."""
    args = parser().parse_args(argv)
    try:
        result = args.run(args)
    except errors.PluresDBError as exc:
        print(f"pluresdb {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if result is not None:
        if dataclasses.is_dataclass(result):
            result = dataclasses.asdict(result)  # type: ignore[arg-type]
        print(_wire.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
