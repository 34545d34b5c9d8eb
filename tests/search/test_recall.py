"""Recall@10 of vector_search against exact brute force, unfiltered and with filters
keeping 50%, 10%, 1% and 0.1% of 100,000 vectors of dimension 128."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

import pluresdb_lab as pl

N, DIM, QUERIES, K = 100_000, 128, 40, 10


@pytest.fixture(scope="module")
def corpus() -> Iterator[dict[str, Any]]:
    """A Gaussian mixture (clustered, like real embeddings), built into one index."""
    rng = np.random.default_rng(20261125)
    centers = rng.normal(size=(200, DIM)).astype(np.float32)
    vectors = centers[rng.integers(0, 200, N)] + rng.normal(scale=0.6, size=(N, DIM))
    vectors = vectors.astype(np.float32)
    buckets = rng.integers(0, 1000, N)
    queries = centers[rng.integers(0, 200, QUERIES)] + rng.normal(scale=0.6, size=(QUERIES, DIM))
    ids = np.array([f"v{i:06d}" for i in range(N)])
    db = pl.connect(":memory:")
    table = pa.table({"id": ids, "bucket": buckets, "vec": list(vectors)})
    db.put_many(table, type="Vec", vector_field="vec")
    db.create_index("vector", type="Vec", ef_construction=100, ef=64)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    yield {"db": db, "unit": unit, "buckets": buckets, "queries": queries, "ids": ids}
    db.close()


def _exact(corpus: dict[str, Any], query: np.ndarray[Any, Any], keep: int | None) -> set[str]:
    candidates = np.arange(N) if keep is None else np.flatnonzero(corpus["buckets"] < keep)
    scores = corpus["unit"][candidates] @ (query / np.linalg.norm(query))
    top = candidates[np.argsort(-scores, kind="stable")[:K]]
    return set(corpus["ids"][top].tolist())


@pytest.mark.parametrize(
    ("keep", "plan"),
    [(None, "hnsw"), (500, "hnsw+filter"), (100, "exact"), (10, "exact"), (1, "exact")],
    ids=["all", "50%", "10%", "1%", "0.1%"],
)
def test_recall_at_10(corpus: dict[str, Any], keep: int | None, plan: str) -> None:
    db = corpus["db"]
    where = None if keep is None else {"field": "bucket", "op": "lt", "value": keep}
    allowed = None if keep is None else set(corpus["ids"][corpus["buckets"] < keep].tolist())
    recalls = []
    for query in corpus["queries"]:
        found = [hit.id for hit in db.vector_search(query, K, filter=where)]
        assert len(found) == K
        assert allowed is None or set(found) <= allowed
        recalls.append(len(set(found) & _exact(corpus, query, keep)) / K)
    assert np.mean(recalls) >= 0.95, recalls
    spec = {"type": "Vec", "vector": {"query": corpus["queries"][0].tolist(), "k": K}}
    if where is not None:
        spec["filter"] = where
    assert db.explain(spec)["vector_plan"] == plan


def test_scores_descend_and_match_cosine(corpus: dict[str, Any]) -> None:
    db = corpus["db"]
    query = corpus["queries"][0]
    hits = db.vector_search(query, K)
    scores = [hit.score for hit in hits]
    assert scores == sorted(scores, reverse=True)
    own = db.get(hits[0].id).vector
    cosine = float(own @ query / np.linalg.norm(own) / np.linalg.norm(query))
    assert hits[0].score == pytest.approx(cosine, abs=1e-4)
