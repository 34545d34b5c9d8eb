"""LAN discovery over zeroconf (mDNS/DNS-SD): advertise this peer, dial the others.

Off by default (``configure(discovery=True)``). While on and listening, the mesh
registers ``<peer id>._pluresdb._tcp.local.`` with its port and the TXT properties
``peer``, ``v`` and ``path``, browses the same type and ``connect()``s to every other
peer it sees, without pinning: the handshake's allow-list / secret decide, as for any
link. Zeroconf's blocking calls run on one worker thread of this module (never on the
mesh loop); its browser calls back on zeroconf's own thread.
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
import threading
import time
from typing import TYPE_CHECKING, Any, TypedDict

from pluresdb_lab.errors import MeshError
from pluresdb_lab.mesh._protocol import VERSION
from pluresdb_lab.mesh._sockets import PATH

if TYPE_CHECKING:
    from pluresdb_lab.mesh._mesh import Mesh

SERVICE_TYPE = "_pluresdb._tcp.local."
RESOLVE_MS = 3000
STOP_S = 10.0


class Discovered(TypedDict):
    """One row of `Mesh.discovered()`: a peer seen on the LAN, its URL, when (epoch s)."""

    peer_id: str
    url: str
    seen: float


class Discovery:
    """Zeroconf registration and browsing for one mesh (started and stopped as a unit)."""

    def __init__(self, mesh: Mesh) -> None:
        self.mesh = mesh
        self._worker = concurrent.futures.ThreadPoolExecutor(1, "pluresdb-mesh-discovery")
        self._lock = threading.Lock()
        self._zc: Any = None  # zeroconf.Zeroconf while running
        self._browser: Any = None
        self._info: Any = None
        self._found: dict[str, Discovered] = {}  # service name -> row
        self._running = False

    # -- control (any thread; the work happens on the worker) ------------------------

    def start(self, host: str, port: int, tls: bool, interfaces: list[str] | None) -> None:
        """Advertise `host:port` and browse, in the background (errors are logged)."""
        future = self._worker.submit(self._start, host, port, tls, interfaces)
        future.add_done_callback(self._started)

    def _started(self, future: concurrent.futures.Future[None]) -> None:
        if not future.cancelled() and future.exception() is not None:
            self.mesh.log.add("error", "discovery", f"discovery failed: {future.exception()}")

    def stop(self) -> None:
        """Unregister, stop browsing and close zeroconf; forget what was discovered."""
        self._worker.submit(self._stop).result(STOP_S * 3)

    def shutdown(self) -> None:
        try:
            self.stop()
        finally:
            self._worker.shutdown(wait=True, cancel_futures=True)

    def discovered(self) -> list[Discovered]:
        with self._lock:
            return [Discovered(**row) for row in self._found.values()]

    # -- worker ----------------------------------------------------------------------

    def _start(self, host: str, port: int, tls: bool, interfaces: list[str] | None) -> None:
        import zeroconf

        self._stop()
        peer = self.mesh.db.peer_id
        choice: Any = interfaces if interfaces is not None else zeroconf.InterfaceChoice.All
        try:
            zc = zeroconf.Zeroconf(interfaces=choice)
        except OSError as exc:
            raise MeshError(f"cannot start zeroconf discovery: {exc}") from None
        properties = {"peer": peer, "v": str(VERSION), "path": PATH}
        if tls:
            properties["tls"] = "1"
        info = zeroconf.ServiceInfo(
            SERVICE_TYPE,
            f"{peer}.{SERVICE_TYPE}",
            port=port,
            properties=properties,
            parsed_addresses=_addresses(host, interfaces),
            server=f"pluresdb-{peer}.local.",
        )
        try:
            zc.register_service(info)
        except Exception as exc:
            zc.close()
            raise MeshError(f"cannot advertise on zeroconf: {exc}") from None
        self._zc, self._info, self._running = zc, info, True
        self._browser = zeroconf.ServiceBrowser(zc, SERVICE_TYPE, handlers=[self._changed])
        self.mesh.log.add("info", "discovery", f"advertising {info.name} on port {port}")

    def _stop(self) -> None:
        zc, browser, info = self._zc, self._browser, self._info
        if zc is None:
            return
        self._running = False
        self._zc = self._browser = self._info = None
        try:
            if browser is not None:
                browser.cancel()
            if info is not None:
                zc.unregister_service(info)
        finally:
            zc.close()
        with self._lock:
            self._found.clear()
        self.mesh.log.add("info", "discovery", "discovery off: unregistered")

    # -- browser thread --------------------------------------------------------------

    def _changed(self, zeroconf: Any, service_type: str, name: str, state_change: Any) -> None:
        from zeroconf import ServiceStateChange

        if not self._running:
            return
        if state_change is ServiceStateChange.Removed:
            self._removed(name)
        else:
            self._resolved(zeroconf, service_type, name)

    def _resolved(self, zc: Any, service_type: str, name: str) -> None:
        info = zc.get_service_info(service_type, name, RESOLVE_MS)
        if info is None or not self._running:
            return
        props = {
            (k.decode() if isinstance(k, bytes) else str(k)): (
                v.decode() if isinstance(v, bytes) else v
            )
            for k, v in info.properties.items()
        }
        peer, addresses = props.get("peer"), info.parsed_addresses()
        if not peer or not addresses or not info.port or peer == self.mesh.db.peer_id:
            return
        if props.get("v") != str(VERSION):
            self.mesh.log.add(
                "warning", "discovery", f"{name}: protocol v{props.get('v')}, not {VERSION}", peer
            )
            return
        scheme = "wss" if props.get("tls") == "1" else "ws"
        address = addresses[0]
        shown = f"[{address}]" if ":" in address else address
        url = f"{scheme}://{shown}:{info.port}{props.get('path') or PATH}"
        with self._lock:
            known = self._found.get(name)
            self._found[name] = Discovered(peer_id=peer, url=url, seen=time.time())
        if known is not None and known["url"] == url:
            return
        self.mesh.log.add("info", "discovered", f"found {url} on the LAN", peer)
        self.mesh.dial_discovered(url, peer)

    def _removed(self, name: str) -> None:
        with self._lock:
            row = self._found.pop(name, None)
        if row is None:
            return
        self.mesh.log.add("info", "discovery", f"{row['url']} left the LAN", row["peer_id"])
        self.mesh.forget(row["url"])


def _addresses(host: str, interfaces: list[str] | None) -> list[str]:
    """The addresses to advertise: the listening host, else the chosen interfaces' or
    every non-loopback IPv4 address of this machine."""
    if host not in ("", "0.0.0.0", "::"):
        return [host]
    chosen = [a for a in interfaces or [] if _is_ip(a)]
    if chosen:
        return chosen
    import ifaddr

    found = [
        str(ip.ip)
        for adapter in ifaddr.get_adapters()
        for ip in adapter.ips
        if isinstance(ip.ip, str) and not ip.ip.startswith("127.")
    ]
    return found or ["127.0.0.1"]


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
