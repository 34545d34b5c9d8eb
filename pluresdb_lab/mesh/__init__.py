"""Mesh: authenticated peer-to-peer sync of PluresDB databases over WebSockets.

Use ``db.mesh`` (a `Mesh`): ``listen()`` returns a ``ws://`` URL, another peer
``connect(url)``s to it, and both converge. The mesh only moves ops: it calls the
engine's ``version_vector``, ``ops_since``, ``apply_ops`` and ``on_op``, nothing else.

Protocol, version 1
-------------------
Endpoint path ``/pluresdb/mesh``. Every frame is one binary WebSocket message: a
msgpack map whose ``t`` names the message. Frames above ``max_frame_bytes``
(default 32 MiB; 4 KiB until the handshake is done), text frames, malformed msgpack,
unknown types, wrong field types and ops the engine rejects (``InvalidOpError``) close
that link with a log entry; nothing of the frame is applied and other links carry on.
(Frames over twice the limit are cut by the WebSocket layer before they are read, and
are logged only as a lost connection.)

Handshake (both sides at once)::

    hello   {v: 1, peer: <peer id>, key: <Ed25519 public key, 32 B>, nonce: <32 B>}
    auth    {sig: Ed25519 signature, mac: HMAC-SHA256 or nil}

``sig`` signs ``"pluresdb-mesh/1 auth\\0" + verifier nonce + signer nonce + signer key
+ verifier key``; ``mac`` is the HMAC of ``"pluresdb-mesh/1 secret\\0"`` + the same
transcript, keyed by the mesh secret (nil when none is set). A side accepts the other
when the signature verifies, the peer id is the hash of the key, the peer was not
``disconnect``-ed (incoming links), and the peer is on the allow-list, is the peer a
``connect(url, peer_id=...)`` pinned, or proved the secret. Otherwise it sends
``refused {reason}`` and closes (code 4003). The handshake must finish in 10 s.

Sync::

    vv      {vv: {peer id: highest seq}, reply: bool, round?: int}  after auth, sync()
    batch   {ops: <packed>, z: bool, done: int, total: int, round?: int}  catch-up
    live    {ops: <packed>, z: bool}                        ops applied since

On ``vv`` a side sends every op the vector lacks (``ops_since``) in ``batch`` frames
of up to 512 ops; ``done``/``total`` is the progress (a round with nothing to send is
one empty batch with total 0). ``reply: true`` asks for the receiver's vector back,
so ``sync()`` runs both ways. A ``vv`` sent by ``sync()`` carries a ``round`` number
that every batch of the answer echoes, so the asking side knows when its round was
answered (``sync_progress`` ``rounds_asked`` / ``rounds_answered``); peers that omit
it still sync. From the moment a side knows the other's vector it
also streams every op its engine applies (local or from a third peer) that the other
is not known to have, in ``live`` frames. ``ops`` is a msgpack array of op dicts,
zlib-compressed (``z``) above 4 KiB. Ops are idempotent and may arrive in any order,
so a dropped link, a duplicate or a reordered batch loses or doubles nothing.

Liveness::

    ping    {n: int}        every heartbeat_s (default 5 s); RTT from the pong
    pong    {n: int}

A link silent for three heartbeats is closed. Outgoing links redial with exponential
backoff (0.2 s doubling to 10 s, jittered) until ``disconnect(peer_id)``.

Back-pressure
-------------
A side keeps at most ``send_buffer_bytes`` (default 4 MiB) written to a link but not
yet taken by its socket (frames are split to a quarter of it; a bigger op goes alone).
When a ``live`` frame would pass it, live ops to that peer stop (``send_state``
"held-back", logged); pings and pongs are skipped too. Once half of it has drained,
the ops the peer missed go out as a catch-up from what it is known to have, exactly
like an answer to ``vv`` ("catching-up"), and live streaming resumes. Catch-up
batches wait for room the same way. A link on which no write completes for
``send_timeout_s`` (default 30 s) while bytes wait is closed (code 1013, logged as
``slow-peer``); the dialing side redials with its usual backoff.

Discovery
---------
Peers come from ``connect(url)`` calls (a static list in settings), and, when
``configure(discovery=True)`` (off by default; ``discovery_interfaces`` picks the
addresses zeroconf uses, default all), from the LAN: while the mesh listens it
registers the mDNS/DNS-SD service ``<peer id>._pluresdb._tcp.local.`` with the
listening port and TXT properties ``peer`` (peer id), ``v`` (protocol version),
``path`` (``/pluresdb/mesh``) and ``tls=1`` for wss://, and browses that type. Every
other peer found is ``connect()``-ed to at ``ws://<address>:<port><path>`` without
pinning its id, so the handshake (allow-list or shared secret) still decides; a peer
that refuses is logged and redialled with the usual backoff. A peer whose service
goes away is no longer dialled. ``discovered()`` lists what was found;
``configure(discovery=False)`` and ``close()`` unregister and stop zeroconf.
"""

from __future__ import annotations

from pluresdb_lab._values import PeerIdentity
from pluresdb_lab.mesh._link import Link
from pluresdb_lab.mesh._mesh import Mesh, PeerInfo
from pluresdb_lab.mesh._snapshots import SnapshotInfo
from pluresdb_lab.mesh._sockets import PATH, MeshSocketHandler

__all__ = ["PATH", "Link", "Mesh", "MeshSocketHandler", "PeerIdentity", "PeerInfo", "SnapshotInfo"]
