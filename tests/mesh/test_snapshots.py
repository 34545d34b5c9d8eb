"""Snapshots: create, list, delete; a new peer bootstraps from one, then syncs the rest."""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pluresdb_lab.errors import CorruptDatabaseError, MeshError, NotFoundError


def test_snapshot_then_bootstrap_then_sync_the_rest(embedded, wait_until, tmp_path) -> None:
    a = embedded("a")
    a.put_many([{"id": f"bulk{i}", "i": i} for i in range(5000)], type="item")
    for i in range(200):
        a.put(f"n{i}", {"i": i})
    info = a.mesh.snapshot()
    assert info["ops"] == len(a.ops_since({}))
    assert info["version_vector"] == a.version_vector()
    assert [s["id"] for s in a.mesh.snapshots()] == [info["id"]]
    assert Path(info["path"]).parent == tmp_path / "a" / "snapshots"
    for i in range(50):
        a.put(f"late{i}", {"i": i})

    copy = shutil.copy(info["path"], tmp_path / "seed.pdbsnap")
    b = embedded("b")
    assert b.mesh.bootstrap(copy) == info["ops"]
    assert b.count() == 5200
    assert b.mesh.bootstrap(copy) == 0  # applying it again changes nothing
    b.mesh.connect(a.mesh.listen())
    wait_until(lambda: b.version_vector() == a.version_vector(), what="rest synced")
    assert b.count() == a.count() == 5250
    (link,) = b.mesh.peers()
    assert link["sync_progress"]["to_receive"] == 50

    a.mesh.delete_snapshot(info["id"])
    assert a.mesh.snapshots() == []
    with pytest.raises(NotFoundError):
        a.mesh.delete_snapshot(info["id"])
    with pytest.raises(NotFoundError):
        b.mesh.bootstrap("no-such-snapshot")


def test_bad_snapshot_files_are_clear_errors(embedded, tmp_path) -> None:
    db = embedded("db")
    bogus = tmp_path / "bogus.pdbsnap"
    bogus.write_bytes(b"\x93\x01\x02\x03")
    with pytest.raises(CorruptDatabaseError, match="not a PluresDB snapshot"):
        db.mesh.bootstrap(bogus)
    info = db.mesh.snapshot()
    whole = Path(info["path"]).read_bytes()
    Path(info["path"]).write_bytes(whole[:-1])
    with pytest.raises(CorruptDatabaseError, match="truncated"):
        db.mesh.bootstrap(info["id"])
    with pytest.raises(MeshError, match="in-memory"):
        embedded().mesh.snapshot()


def self_signed(folder: Path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(certfile), str(keyfile)


def test_tls_when_a_certificate_is_configured(embedded, wait_until, tmp_path) -> None:
    certfile, keyfile = self_signed(tmp_path)
    a = embedded(certfile=certfile, keyfile=keyfile)
    b = embedded(cafile=certfile)
    url = a.mesh.listen()
    assert url.startswith("wss://127.0.0.1:")
    a.put("secret-node", {"x": 1})
    b.mesh.connect(url)
    wait_until(lambda: b.get("secret-node") is not None, what="sync over wss")
    stranger = embedded()  # does not trust the certificate
    stranger.mesh.connect(url)
    wait_until(
        lambda: "cannot connect" in str([p["last_error"] for p in stranger.mesh.peers()]),
        what="untrusted certificate rejected",
    )
