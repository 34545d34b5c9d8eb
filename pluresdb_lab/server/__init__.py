"""The Jupyter server extension and the standalone `pluresdb serve`: REST over one Database."""

from __future__ import annotations

from pluresdb_lab.server.app import PluresDBApp
from pluresdb_lab.server.routes import routes

__all__ = ["PluresDBApp", "routes"]
