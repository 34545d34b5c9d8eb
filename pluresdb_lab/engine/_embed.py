"""Embedders: how text becomes a vector for vector indexes and text queries.

Nothing here downloads anything. The default is lexical; a sentence-transformers model
is used only when the package and the named model are already installed locally.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from pluresdb_lab.errors import InvalidQueryError

Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    """Turns texts into float32 vectors of a fixed dimension."""

    name: str
    dim: int

    def embed(self, texts: list[str]) -> Vectors: ...


class LexicalEmbedder:
    """Hashed character 3-grams and words, L2-normalised (the offline default).

    This captures lexical similarity only: texts sharing spellings and words score
    high, synonyms and paraphrases do not. It needs no model and no network.
    """

    name = "lexical"

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim

    def _slot(self, feature: str) -> tuple[int, float]:
        digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
        value = int.from_bytes(digest, "little")
        # A sign bit keeps hash collisions from only ever adding up.
        return value % self.dim, 1.0 if value >> 63 else -1.0

    def embed(self, texts: list[str]) -> Vectors:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = re.findall(r"\w+", text.lower())
            features = list(words)
            for word in words:
                padded = f" {word} "
                features.extend(padded[i : i + 3] for i in range(len(padded) - 2))
            for feature in features:
                slot, sign = self._slot(feature)
                out[row, slot] += sign
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.where(norms == 0, 1, norms)).astype(np.float32)


class SentenceTransformerEmbedder:
    """A locally installed sentence-transformers model (semantic similarity)."""

    def __init__(self, model_name: str) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise InvalidQueryError(
                "embedder 'st:...' needs the sentence-transformers package; install it "
                "or use the default embedder 'lexical'"
            ) from None
        try:
            # local_files_only: nothing is fetched at run time.
            self._model: Any = SentenceTransformer(model_name, local_files_only=True)
        except OSError:
            raise InvalidQueryError(
                f"the sentence-transformers model {model_name!r} is not installed locally"
            ) from None
        self.name = f"st:{model_name}"
        self.dim = int(self._model.get_sentence_embedding_dimension())

    def embed(self, texts: list[str]) -> Vectors:
        vectors = self._model.encode(texts, normalize_embeddings=True)
        return np.asarray(vectors, dtype=np.float32)


def embedder_named(name: str, dim: int | None = None) -> Embedder:
    """'lexical' (the default) or 'st:<model name>'."""
    if name == "lexical":
        return LexicalEmbedder(dim or 256)
    if name.startswith("st:"):
        return SentenceTransformerEmbedder(name[3:])
    raise InvalidQueryError(f"unknown embedder {name!r}; use 'lexical' or 'st:<model name>'")
