"""Nodes as stored rows become the API's values (`pluresdb_lab._values`)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import numpy.typing as npt

from pluresdb_lab._values import Node, to_datetime


def to_vector(blob: bytes | None) -> npt.NDArray[np.float32] | None:
    return None if blob is None else np.frombuffer(blob, dtype=np.float32).copy()


def node_from_row(row: dict[str, Any]) -> Node:
    data = {k: v for k, v in json.loads(row["data"]).items() if v is not None}
    return Node(
        row["id"],
        row["type"],
        data,
        to_vector(row["vector"]),
        to_datetime(row["written"]),
        int(row["version"]),
    )
