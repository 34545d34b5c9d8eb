"""Text search: phrases, prefixes, field boosts, snippets, facets summing to the hit
count, and the text clause of the query spec."""

from __future__ import annotations

from typing import Any

import pytest

ARTICLES = [
    {"id": "a1", "title": "Red fox", "body": "the quick brown fox jumps", "section": "nature"},
    {"id": "a2", "title": "Brown bears", "body": "a fox and a quick bear", "section": "nature"},
    {"id": "a3", "title": "Quick sort", "body": "sorting algorithms explained", "section": "tech"},
    {"id": "a4", "title": "Foxes in town", "body": "urban wildlife", "section": "city"},
    {"id": "a5", "title": "Databases", "body": "the brown fox of databases", "section": "tech"},
]


@pytest.fixture
def articles(db: Any) -> Any:
    db.put_many(
        [{**a, "words": len(a["body"].split()), "tags": [a["section"], "all"]} for a in ARTICLES],
        type="Article",
    )
    db.create_index("text", type="Article", fields=["title", "body"])
    return db


def ids(result: Any) -> list[str]:
    return [hit.id for hit in result.hits]


def test_phrase_matches_only_adjacent_words(articles: Any) -> None:
    assert sorted(ids(articles.search('"brown fox"'))) == ["a1", "a5"]
    assert sorted(ids(articles.search("brown fox"))) == ["a1", "a2", "a5"]  # any word


def test_prefix_matches_word_starts(articles: Any) -> None:
    assert sorted(ids(articles.search("fox*"))) == ["a1", "a2", "a4", "a5"]
    assert sorted(ids(articles.search("sort*"))) == ["a3"]
    assert sorted(ids(articles.search("sort* urban"))) == ["a3", "a4"]


def test_field_boosts_reorder_hits(articles: Any) -> None:
    by_title = ids(articles.search("quick", fields={"title": 10.0, "body": 1.0}))
    by_body = ids(articles.search("quick", fields={"title": 1.0, "body": 10.0}))
    assert by_title[0] == "a3"
    assert by_body[0] in ("a1", "a2")
    assert ids(articles.search("quick", fields=["title"])) == ["a3"]


def test_snippets_mark_the_match(articles: Any) -> None:
    hit = articles.search("databases", fields=["body"]).hits[0]
    assert hit.id == "a5"
    assert "<b>databases</b>" in hit.snippet
    assert hit.node.data["section"] == "tech"


def test_facets_sum_to_hit_count(articles: Any) -> None:
    result = articles.search("fox* quick", facets=["section", "type"], limit=2)
    assert len(result.hits) == 2
    assert result.total == 5
    assert sum(result.facets["section"].values()) == result.total
    assert result.facets["type"] == {"Article": 5}
    ranged = articles.search("fox", facets=[{"field": "words", "ranges": [3, 5]}])
    assert sum(ranged.facets["words:ranges"].values()) == ranged.total
    bucketed = articles.search("fox", facets=[{"field": "time", "bucket": "day"}])
    assert sum(bucketed.facets["time:day"].values()) == bucketed.total
    assert articles.search("fox", facets=["tags"]).facets["tags"]["all"] == 3


def test_filter_narrows_hits_and_total(articles: Any) -> None:
    result = articles.search(
        "fox", filter={"field": "section", "op": "eq", "value": "nature"}, facets=["section"]
    )
    assert sorted(ids(result)) == ["a1", "a2"]
    assert result.total == 2
    assert result.facets["section"] == {"nature": 2}


def test_text_clause_in_a_query(articles: Any) -> None:
    spec = {
        "type": "Article",
        "text": {"query": "fox"},
        "filter": {"field": "section", "op": "ne", "value": "city"},
        "select": ["id", "score"],
    }
    table = articles.query(spec)
    assert sorted(table.column("id").to_pylist()) == ["a1", "a2", "a5"]
    scores = table.column("score").to_pylist()
    assert scores == sorted(scores, reverse=True)
    assert articles.explain(spec)["text_index"] == "text_Article_title_body"
