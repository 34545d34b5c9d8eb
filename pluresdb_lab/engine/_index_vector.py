"""Vector index: hnswlib HNSW over node vectors (or embedded text fields), with
exact search over a filtered candidate set when that set is small.

Labels are positions in `self._vectors` (a copy kept for exact search); an updated
node keeps its label, a deleted one is marked deleted in HNSW and its label retired.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import hnswlib
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from pluresdb_lab._values import Node
from pluresdb_lab.engine._embed import Embedder, embedder_named
from pluresdb_lab.engine._index_base import Index
from pluresdb_lab.errors import InvalidQueryError, VectorDimensionError

Matrix = npt.NDArray[np.float32]
SPACES = ("cosine", "l2", "ip")
DEFAULTS: dict[str, Any] = {"space": "cosine", "M": 16, "ef_construction": 200, "ef": 64}
# Below this many candidates (times 128 dimensions) a filtered search is exact: a
# matrix product over them is faster than HNSW and has perfect recall.
EXACT_WORK = 40_000 * 128
# HNSW with a filter widens ef by 1/selectivity, up to this many.
MAX_EF = 2000
# What `save` writes per index besides its `<name>.json` stamp.
SAVED_FILES = ("hnsw", "vectors.npy", "alive.npy")


def check_params(params: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    unknown = set(params) - {*DEFAULTS, "dim", "embedder"}
    if unknown:
        raise InvalidQueryError(f"unknown vector index parameter(s) {sorted(unknown)}")
    merged = DEFAULTS | params
    if merged["space"] not in SPACES:
        raise InvalidQueryError(f"space is one of {SPACES}, got {merged['space']!r}")
    for key in ("M", "ef_construction", "ef"):
        value = merged[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InvalidQueryError(f"vector index parameter {key} is a positive int")
    if fields or "embedder" in merged:
        merged.setdefault("embedder", "lexical")
    return merged


class VectorIndex(Index):
    """HNSW over the vectors of one type (or of every user type)."""

    kind = "vector"

    def __init__(
        self, name: str, type_name: str | None, fields: list[str], params: dict[str, Any]
    ) -> None:
        super().__init__(name, type_name, fields, check_params(params, fields))
        self.embedder: Embedder | None = None
        if "embedder" in self.params:
            self.embedder = embedder_named(self.params["embedder"], self.params.get("dim"))
            self.params["dim"] = self.embedder.dim
        self._reset()

    def _reset(self) -> None:
        self._hnsw: hnswlib.Index | None = None
        self._vectors: Matrix = np.zeros((0, 0), dtype=np.float32)
        self._alive: npt.NDArray[np.bool_] = np.zeros(0, dtype=bool)
        self._ids: list[str] = []
        self._labels: dict[str, int] = {}
        self._lookup: tuple[npt.NDArray[np.str_], npt.NDArray[np.int64]] | None = None
        self._row_labels: tuple[pa.Table, npt.NDArray[np.int64]] | None = None

    @property
    def space(self) -> str:
        return str(self.params["space"])

    @property
    def dim(self) -> int | None:
        dim = self.params.get("dim")
        return None if dim is None else int(dim)

    # -- building and following writes -------------------------------------------------

    def build(self, rows: pa.Table) -> None:
        self._reset()
        if self.fields:
            records = [json.loads(text) for text in rows.column("data").to_pylist()]
            texts = _texts(records, self.fields)
            ids = rows.column("id").to_pylist()
            assert self.embedder is not None
            self._add(ids, self.embedder.embed(texts))
            return
        rows = rows.filter(pc.is_valid(rows.column("vector")))
        if rows.num_rows:
            self._add(rows.column("id").to_pylist(), _matrix(rows.column("vector")))

    def apply(self, pending: dict[str, Node | None]) -> None:
        ids: list[str] = []
        vectors: list[Matrix] = []
        texts: list[str] = []
        for node_id, node in pending.items():
            if node is not None and self.fields:
                ids.append(node_id)
                texts.append(_texts([node.data], self.fields)[0])
            elif node is not None and node.vector is not None:
                ids.append(node_id)
                vectors.append(node.vector)
            else:
                self._remove(node_id)
        if self.fields and ids:
            assert self.embedder is not None
            self._add(ids, self.embedder.embed(texts))
        elif ids:
            self._add(ids, np.stack(vectors))

    def _remove(self, node_id: str) -> None:
        label = self._labels.pop(node_id, None)
        self._lookup = self._row_labels = None
        if label is not None and self._hnsw is not None:
            self._hnsw.mark_deleted(label)
            self._alive[label] = False

    def _add(self, ids: list[str], vectors: Matrix) -> None:
        if not ids:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self._lookup = self._row_labels = None
        if self.dim is None:
            self.params["dim"] = vectors.shape[1]
        if vectors.shape[1] != self.dim:
            raise VectorDimensionError(
                f"index {self.name!r} holds {self.dim}-dimensional vectors, got "
                f"{vectors.shape[1]}; give vectors of one dimension per indexed type"
            )
        if self.space == "cosine":
            vectors = _normalised(vectors)
        labels = np.empty(len(ids), dtype=np.int64)
        fresh = 0
        for i, node_id in enumerate(ids):
            label = self._labels.get(node_id)
            if label is None:
                label = len(self._ids) + fresh
                fresh += 1
            labels[i] = label
        self._grow(len(self._ids) + fresh)
        for i, node_id in enumerate(ids):
            if node_id not in self._labels:
                self._labels[node_id] = int(labels[i])
                self._ids.append(node_id)
        assert self._hnsw is not None
        self._hnsw.add_items(vectors, labels)
        self._vectors[labels] = vectors
        self._alive[labels] = True

    def _grow(self, needed: int) -> None:
        dim = self.dim
        assert dim is not None
        if self._hnsw is None:
            self._hnsw = hnswlib.Index(space=self.space, dim=dim)
            self._hnsw.init_index(
                max(needed, 1024),
                M=self.params["M"],
                ef_construction=self.params["ef_construction"],
            )
            self._vectors = np.zeros((max(needed, 1024), dim), dtype=np.float32)
            self._alive = np.zeros(max(needed, 1024), dtype=bool)
        capacity = self._hnsw.get_max_elements()
        if needed > capacity:
            # Doubling keeps the amortised cost of growing linear.
            capacity = max(needed, capacity * 2)
            self._hnsw.resize_index(capacity)
            grown = np.zeros((capacity, dim), dtype=np.float32)
            grown[: len(self._vectors)] = self._vectors
            self._vectors = grown
            self._alive = np.concatenate(
                [self._alive, np.zeros(capacity - len(self._alive), dtype=bool)]
            )

    # -- lookups -----------------------------------------------------------------------

    def entries(self) -> int:
        return len(self._labels)

    def memory_bytes(self) -> int:
        if self._hnsw is None:
            return 0
        m = int(self.params["M"])
        per_element = 4 * (self.dim or 0) + 8 * m + 8 * 2 * m
        return int(self._hnsw.get_max_elements() * per_element + self._vectors.nbytes)

    def embed_text(self, text: str) -> Matrix:
        embedder = self.embedder or embedder_named("lexical", self.dim)
        vectors: Matrix = embedder.embed([text])
        first: Matrix = vectors[0]
        return first

    def vector_of(self, node_id: str) -> Matrix | None:
        label = self._labels.get(node_id)
        return None if label is None else self._vectors[label].copy()

    def labels_of(self, ids: pa.Array) -> npt.NDArray[np.int64]:
        """Labels of these node ids; ids not in the index are left out."""
        labels = self._aligned_labels(ids)
        return labels[labels >= 0]

    def labels_where(self, table: pa.Table, mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
        """Labels of the rows of `table` that `mask` keeps. The label of every row of a
        table is worked out once per table (a type's table lives until its next write),
        so a filtered search costs one boolean selection, not a lookup per id."""
        if self._row_labels is None or self._row_labels[0] is not table:
            self._row_labels = (table, self._aligned_labels(table.column("id").combine_chunks()))
        labels = self._row_labels[1][mask]
        return labels[labels >= 0]

    def _aligned_labels(self, ids: pa.Array) -> npt.NDArray[np.int64]:
        """The label of each id, -1 where absent: binary search over the indexed ids,
        sorted once per change."""
        if self._lookup is None:
            names = np.array(list(self._labels), dtype=str)
            labels = np.fromiter(self._labels.values(), dtype=np.int64, count=len(names))
            order = np.argsort(names)
            self._lookup = (names[order], labels[order])
        names, labels = self._lookup
        out = np.full(len(ids), -1, dtype=np.int64)
        if not len(names) or not len(ids):
            return out
        wanted = np.asarray(ids.to_numpy(zero_copy_only=False).astype(str))
        at = np.minimum(np.searchsorted(names, wanted), len(names) - 1)
        hit = names[at] == wanted
        out[hit] = labels[at[hit]]
        return out

    def plan(self, candidates: int | None) -> str:
        """'hnsw', 'hnsw+filter' or 'exact' for a filter keeping `candidates` nodes."""
        if candidates is None:
            return "hnsw"
        if candidates * (self.dim or 1) <= EXACT_WORK or candidates <= 0.02 * self.entries():
            return "exact"
        return "hnsw+filter"

    def search(
        self, query: Matrix, k: int, allowed: npt.NDArray[np.int64] | None
    ) -> list[tuple[str, float]]:
        """The k nearest (id, score) pairs, higher score closer; within `allowed` labels."""
        if self._hnsw is None or not self._labels or k < 1:
            return []
        query = np.asarray(query, dtype=np.float32).reshape(-1)
        if query.shape[0] != self.dim:
            raise VectorDimensionError(
                f"index {self.name!r} holds {self.dim}-dimensional vectors, the query has "
                f"{query.shape[0]}"
            )
        how = self.plan(None if allowed is None else len(allowed))
        if how == "exact":
            assert allowed is not None
            return self._exact(query, k, allowed)
        ef = int(self.params["ef"])
        flags: bytearray | None = None
        if allowed is not None:
            flags = bytearray(len(self._alive))
            for label in allowed.tolist():
                flags[label] = 1
            ef = min(MAX_EF, int(max(ef, k) * self.entries() / max(len(allowed), 1)))
        k = min(k, self.entries() if allowed is None else len(allowed))
        self._hnsw.set_ef(max(ef, k))
        try:
            if flags is None:
                # One query: a thread pool costs more than it saves.
                labels, distances = self._hnsw.knn_query(query, k=k, num_threads=1)
            else:
                allow = flags
                labels, distances = self._hnsw.knn_query(
                    query, k=k, num_threads=1, filter=lambda label: allow[label] == 1
                )
        except RuntimeError:
            # HNSW found fewer than k reachable matches: fall back to exact search.
            everything = np.flatnonzero(self._alive) if allowed is None else allowed
            return self._exact(query, k, everything)
        return [
            (self._ids[int(label)], self._score(float(d)))
            for label, d in zip(labels[0], distances[0], strict=True)
        ]

    def _exact(
        self, query: Matrix, k: int, allowed: npt.NDArray[np.int64]
    ) -> list[tuple[str, float]]:
        if not len(allowed):
            return []
        candidates = self._vectors[allowed]
        if self.space == "l2":
            diff = candidates - query
            distances = np.einsum("ij,ij->i", diff, diff)
        else:
            q = _normalised(query[None, :])[0] if self.space == "cosine" else query
            distances = 1.0 - candidates @ q
        k = min(k, len(allowed))
        top = np.argpartition(distances, k - 1)[:k]
        top = top[np.argsort(distances[top], kind="stable")]
        return [(self._ids[int(allowed[i])], self._score(float(distances[i]))) for i in top]

    def _score(self, distance: float) -> float:
        return -distance if self.space == "l2" else 1.0 - distance

    # -- persistence -------------------------------------------------------------------

    def save(self, folder: Path, version_vector: dict[str, int]) -> None:
        """Write the HNSW graph and labels, stamped with the state they reflect."""
        if self._hnsw is None:
            return
        folder.mkdir(parents=True, exist_ok=True)
        meta_file = folder / f"{self.name}.json"
        # The stamp goes first and comes back last, after the files it vouches for are
        # on disk: a crash in between leaves no stamp, so the next open rebuilds.
        meta_file.unlink(missing_ok=True)
        files = [folder / f"{self.name}.{suffix}" for suffix in SAVED_FILES]
        self._hnsw.save_index(str(files[0]))
        np.save(files[1], self._vectors)
        np.save(files[2], self._alive)
        for path in files:
            with path.open("rb+") as handle:
                os.fsync(handle.fileno())
        temporary = meta_file.with_suffix(".tmp")
        with temporary.open("w") as out:
            json.dump({"vv": version_vector, "ids": self._ids, "dim": self.dim}, out)
            out.flush()
            os.fsync(out.fileno())
        temporary.replace(meta_file)

    def load(self, folder: Path, version_vector: dict[str, int]) -> bool:
        """Load a saved index if it reflects exactly `version_vector`; else False."""
        meta_file = folder / f"{self.name}.json"
        if not meta_file.exists():
            return False
        try:
            meta = json.loads(meta_file.read_text())
            if meta["vv"] != version_vector or meta["dim"] is None:
                return False
            vectors = np.load(folder / f"{self.name}.vectors.npy")
            alive = np.load(folder / f"{self.name}.alive.npy")
            hnsw = hnswlib.Index(space=self.space, dim=int(meta["dim"]))
            hnsw.load_index(str(folder / f"{self.name}.hnsw"), max_elements=len(vectors))
        except (OSError, ValueError, KeyError, RuntimeError):
            return False
        self.params["dim"] = int(meta["dim"])
        self._hnsw, self._vectors, self._alive = hnsw, vectors, alive
        self._ids = list(meta["ids"])
        self._labels = {node_id: i for i, node_id in enumerate(self._ids) if alive[i]}
        self._lookup = self._row_labels = None
        self.built = True
        return True


def _normalised(vectors: Matrix) -> Matrix:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms == 0, 1, norms)).astype(np.float32)


def _matrix(column: pa.ChunkedArray) -> Matrix:
    """Vectors stored as float32 bytes, as one matrix without a Python object per row."""
    array = column.combine_chunks()
    lengths = pc.binary_length(array)
    width = pc.min_max(lengths).as_py()
    if width["min"] != width["max"]:
        raise VectorDimensionError("an index cannot mix vectors of different dimensions")
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)
    start, stop = offsets[array.offset], offsets[array.offset + len(array)]
    raw = np.frombuffer(array.buffers()[2], dtype=np.uint8)[start:stop]
    return raw.view(np.float32).reshape(len(array), width["max"] // 4).copy()


def _texts(records: list[dict[str, Any]], fields: list[str]) -> list[str]:
    return [" ".join(str(r[f]) for f in fields if r.get(f) is not None) for r in records]
