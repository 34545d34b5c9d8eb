"""A vector index over text fields: the offline lexical embedder, text queries, and
its vectors following updates."""

from __future__ import annotations

from typing import Any

import numpy as np

from pluresdb_lab.engine._embed import LexicalEmbedder


def test_lexical_embedder_is_deterministic_and_normalised() -> None:
    embedder = LexicalEmbedder(64)
    first, again = embedder.embed(["Golden Gate"]), embedder.embed(["Golden Gate"])
    assert first.shape == (1, 64)
    assert first.dtype == np.float32
    assert np.array_equal(first, again)
    assert abs(float(np.linalg.norm(first[0])) - 1) < 1e-6
    similar, other = embedder.embed(["golden gates", "zzz qqq"])
    assert float(first[0] @ similar) > float(first[0] @ other)


def test_text_query_through_an_embedding_index(db: Any) -> None:
    db.put_many(
        [
            {"id": "p1", "title": "Golden Gate Park"},
            {"id": "p2", "title": "Central Park Zoo"},
            {"id": "p3", "title": "Harbour Bridge"},
        ],
        type="Place",
    )
    info = db.create_index("vector", type="Place", fields=["title"])
    assert info["params"]["embedder"] == "lexical"
    assert info["entries"] == 3
    assert db.vector_search("golden gate", k=1)[0].id == "p1"
    db.put("p3", {"title": "Golden Gate Bridge"})
    assert {h.id for h in db.vector_search("golden gate bridge", k=1)} == {"p3"}
    assert db.vector_search("p2", k=1)[0].id == "p2"  # a node id queries by its vector
