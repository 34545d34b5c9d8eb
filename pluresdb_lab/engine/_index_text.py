"""Text index: tantivy full-text search (BM25, phrases, prefixes, field boosts, snippets).

The tantivy index lives in memory and is rebuilt from the current state on first use
after opening, so it can never disagree with the database after a crash.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pyarrow as pa
import tantivy

from pluresdb_lab._values import Node
from pluresdb_lab.engine._index_base import Index
from pluresdb_lab.errors import InvalidQueryError

WRITER_HEAP = 32_000_000


class TextIndex(Index):
    """BM25 over chosen string fields of one type (or of every user type)."""

    kind = "text"

    def __init__(
        self, name: str, type_name: str | None, fields: list[str], params: dict[str, Any]
    ) -> None:
        if not fields:
            raise InvalidQueryError("a text index needs fields=[...] naming the text fields")
        if params:
            raise InvalidQueryError(f"unknown text index parameter(s) {sorted(params)}")
        super().__init__(name, type_name, fields, params)
        self._reset()

    def _reset(self) -> None:
        builder = tantivy.SchemaBuilder()
        builder.add_text_field("_id", stored=True, tokenizer_name="raw")
        builder.add_text_field("_type", stored=True, tokenizer_name="raw")
        for name in self.fields:
            builder.add_text_field(name, stored=True)
        self._schema = builder.build()
        self._index = tantivy.Index(self._schema)
        self._writer = self._index.writer(heap_size=WRITER_HEAP, num_threads=1)
        self._count = 0
        self._ids: set[str] = set()

    def _document(self, node_id: str, type_name: str | None, data: dict[str, Any]) -> Any:
        values: dict[str, Any] = {"_id": node_id, "_type": type_name or ""}
        for name in self.fields:
            value = data.get(name)
            if isinstance(value, list):
                values[name] = " ".join(str(v) for v in value)
            elif value is not None:
                values[name] = str(value)
        return tantivy.Document(**values)

    def build(self, rows: pa.Table) -> None:
        self._reset()
        for node_id, type_name, text in zip(
            rows.column("id").to_pylist(),
            rows.column("type").to_pylist(),
            rows.column("data").to_pylist(),
            strict=True,
        ):
            self._writer.add_document(self._document(node_id, type_name, json.loads(text)))
            self._ids.add(node_id)
        self._commit()

    def apply(self, pending: dict[str, Node | None]) -> None:
        for node_id, node in pending.items():
            if node_id in self._ids:
                self._writer.delete_documents_by_term("_id", node_id)
                self._ids.discard(node_id)
            if node is not None:
                self._writer.add_document(self._document(node_id, node.type, node.data))
                self._ids.add(node_id)
        self._commit()

    def _commit(self) -> None:
        self._writer.commit()
        self._index.reload()

    def entries(self) -> int:
        return len(self._ids)

    def memory_bytes(self) -> int:
        # tantivy does not report its RAM directory size; the writer's arena bounds it.
        return WRITER_HEAP + 64 * len(self._ids)

    def _query(self, text: str, fields: dict[str, float]) -> Any:
        """Parse `text`: tantivy syntax ("phrase", AND, OR, field:term), plus `word*`
        for a prefix. Like bare terms (tantivy's default), prefix terms are alternatives:
        a document matching any part is a hit."""
        words = text.split()
        prefixes = [w[:-1].lower() for w in words if w.endswith("*") and len(w) > 1]
        rest = " ".join(w for w in words if not (w.endswith("*") and len(w) > 1))
        parts: list[tuple[Any, Any]] = []
        try:
            if rest.strip():
                parsed = self._index.parse_query(rest, list(fields), field_boosts=fields)
                parts.append((tantivy.Occur.Should, parsed))
        except ValueError as exc:
            raise InvalidQueryError(f"text query {text!r} does not parse: {exc}") from None
        for prefix in prefixes:
            pattern = re.escape(prefix) + ".*"
            alternatives = [
                (
                    tantivy.Occur.Should,
                    tantivy.Query.boost_query(
                        tantivy.Query.regex_query(self._schema, name, pattern), boost
                    ),
                )
                for name, boost in fields.items()
            ]
            parts.append((tantivy.Occur.Should, tantivy.Query.boolean_query(alternatives)))
        if not parts:
            raise InvalidQueryError("the text query is empty")
        return tantivy.Query.boolean_query(parts)

    def _fields(self, fields: dict[str, float] | None) -> dict[str, float]:
        chosen = fields or dict.fromkeys(self.fields, 1.0)
        unknown = [name for name in chosen if name not in self.fields]
        if unknown:
            raise InvalidQueryError(
                f"field(s) {unknown} are not in text index {self.name!r} (it has {self.fields})"
            )
        return chosen

    def search(
        self, text: str, fields: dict[str, float] | None, limit: int | None = None
    ) -> tuple[list[tuple[str, float]], int]:
        """The best `limit` hits (every hit if None) as (id, BM25 score), best first,
        and how many documents matched."""
        query = self._query(text, self._fields(fields))
        searcher = self._index.searcher()
        wanted = max(searcher.num_docs if limit is None else limit, 1)
        result = searcher.search(query, wanted, count=True)
        found = [(searcher.doc(address)["_id"][0], float(score)) for score, address in result.hits]
        found.sort(key=lambda hit: (-hit[1], hit[0]))
        matched = result.count  # type: ignore[attr-defined]  # set when count=True; the stub omits it
        return found[:limit], int(matched or 0)

    def snippets(
        self, text: str, fields: dict[str, float] | None, ids: list[str]
    ) -> dict[str, str]:
        """An HTML snippet per id, `<b>` around the matched words, from its first field
        that matches."""
        chosen = self._fields(fields)
        query = self._query(text, chosen)
        searcher = self._index.searcher()
        generators = [
            tantivy.SnippetGenerator.create(searcher, query, self._schema, name) for name in chosen
        ]
        found = {}
        for node_id in ids:
            term = tantivy.Query.term_query(self._schema, "_id", node_id)
            hits = searcher.search(term, 1).hits
            snippet = ""
            if hits:
                doc = searcher.doc(hits[0][1])
                for generator in generators:
                    snippet = generator.snippet_from_doc(doc).to_html()
                    if snippet:
                        break
            found[node_id] = snippet
        return found
