"""The `pluresdb` command: help, and the storage subcommands on a database folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pluresdb_lab import cli
from pluresdb_lab._database import Database

COMMANDS = ("serve", "stats", "backup", "restore", "import", "export", "compact")


def test_help_lists_every_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pluresdb_lab.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0
    for command in COMMANDS:
        assert f"    {command} " in out.stdout, command


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    assert cli.main(list(argv)) == 0
    result: dict[str, object] = json.loads(capsys.readouterr().out)
    return result


def test_storage_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "db")
    source = tmp_path / "in.csv"
    source.write_text("id,v\n" + "".join(f"r{i},{i}\n" for i in range(30)))
    assert run(
        capsys, "import", str(source), "--data", data, "--type", "Row", "--id-field", "id"
    ) == {"imported": 30}
    assert run(capsys, "stats", "--data", data)["nodes"] == 30
    assert run(capsys, "compact", "--data", data)["rows_after"] == 30
    out = tmp_path / "out.ndjson"
    assert run(capsys, "export", str(out), "--data", data, "--query", "SELECT * FROM Row") == {
        "exported": 30
    }
    assert len(out.read_text().splitlines()) == 30
    backup = run(capsys, "backup", str(tmp_path / "backups"), "--data", data)
    assert backup["kind"] == "full"
    assert backup["nodes"] == 30
    restored = tmp_path / "restored"
    assert run(capsys, "restore", str(backup["path"]), "--data", str(restored)) == {
        "path": str(restored)
    }
    with Database(restored) as db:
        assert db.count("Row") == 30


def test_errors_exit_1_with_the_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "absent.csv"
    assert cli.main(["import", str(missing), "--data", str(tmp_path / "db")]) == 1
    assert "NotFoundError" in capsys.readouterr().err
