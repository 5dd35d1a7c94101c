"""Token pooling at ingest: a passage's token vectors (or a page's patch vectors) clustered by
similarity and each cluster averaged, so a point stores about 1/factor of them (the query side stays
unpooled). This is the hierarchical pooling of colpali-engine's HierarchicalTokenPooler (Ward
linkage, at most n // factor clusters, each cluster's mean renormalised), done with scipy directly:
the pooler builds every cluster in a torch loop and links the rows of the n x n distance matrix
(O(n^3)). Ward on the unit vectors themselves (whose Euclidean distance is sqrt(2 - 2 cos)) took
3.5 ms per 101-token passage against the pooler's 74 ms, and 0.23 s per 1,030-patch page against
1.36 s (best of 5 on a loaded 2-core machine): the pooler would have cost more than encoding.

Explanations name the stored vector a query token matched best; after pooling that vector is a
cluster, so each cluster keeps a representative: the member closest to the cluster's mean, whose
token string, word and box stand for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.cluster.hierarchy import linkage

#: Pooling never leaves fewer vectors than this (or than there were): a short text pooled to one or
#: two vectors loses all token-level matching (a 7-word note pooled by 4 became one mean vector, and
#: a query for its one distinctive word no longer found it by MaxSim), and saves only a few hundred
#: bytes. Full passages and pages (~100 tokens, ~1,000 patches) are far above it.
MIN_VECTORS = 16


@dataclass
class Pooled:
    tokens: np.ndarray  # (m, dim) float32 unit rows, m <= n
    representatives: list[int]  # per pooled row, the index of the original token standing for it


#: Ward's linkage holds all n(n-1)/2 distances, so a page of 12,000 words took 5 GB and 133 s (and
#: 800,000 words asked for 2.3 TiB). Longer inputs are pooled in consecutive blocks of at most this
#: many vectors, each on its own (a ColPali page's ~1,030 patches stay one block): memory and time
#: grow linearly past it, and a cluster never joins tokens a block apart (far apart on the page).
BLOCK = 2048


def pool_tokens(tokens: np.ndarray, factor: int) -> Pooled:
    """Pools (n, dim) unit rows to at most max(n // factor, MIN_VECTORS) rows, in order of each
    cluster's first token. factor 1 (or n <= MIN_VECTORS) keeps them as they are."""
    n = len(tokens)
    if factor <= 1 or n <= MIN_VECTORS:
        return Pooled(tokens, list(range(n)))
    if n > BLOCK:
        blocks = -(-n // BLOCK)  # equal blocks, each at most BLOCK long
        parts, reps = [], []
        for block in np.array_split(np.arange(n), blocks):
            part = _pool(tokens[block], max(len(block) // factor, 1))
            parts.append(part.tokens)
            reps += [int(block[0]) + r for r in part.representatives]
        return Pooled(np.concatenate(parts), reps)
    return _pool(tokens, max(n // factor, MIN_VECTORS))


def _pool(tokens: np.ndarray, k: int) -> Pooled:
    """Ward clusters of (n, dim) unit rows cut at k, each cluster's mean renormalised."""
    n = len(tokens)
    if k >= n:
        return Pooled(np.asarray(tokens, dtype=np.float32), list(range(n)))
    rows = np.asarray(tokens, dtype=np.float64)
    clusters = _cut(linkage(rows, method="ward"), n, k)
    _, first, labels = np.unique(clusters, return_index=True, return_inverse=True)
    order = np.argsort(first)  # clusters in reading order: explanations list positions in order
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    members = np.zeros((len(order), n))  # one row per cluster, 1 where a token belongs to it
    members[rank[labels], np.arange(n)] = 1.0
    sums = members @ rows
    pooled = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    sims = np.einsum("ij,ij->i", rows, pooled[rank[labels]])  # each token against its cluster's mean
    reps = np.where(members > 0, sims, -np.inf).argmax(axis=1).tolist()
    return Pooled(pooled.astype(np.float32), reps)


def _cut(merges: np.ndarray, n: int, k: int) -> np.ndarray:
    """Each token's cluster when a Ward linkage is cut at k clusters: the first n - k merges applied
    (Ward merge heights never decrease). fcluster(criterion="maxclust") gives the same partition but
    validated the linkage and searched for a height first, which cost more than the linkage itself."""
    parent = np.arange(2 * n - 1)
    for i in range(n - k):
        parent[int(merges[i, 0])] = parent[int(merges[i, 1])] = n + i
    for j in range(2 * n - 2, -1, -1):  # a merge's id is larger than its parts': resolve top down
        parent[j] = parent[parent[j]]
    return parent[:n]


def positions(pooled: Pooled) -> dict[str, Any]:
    """Pooled points name, per stored vector, the position of its representative among the encoder's
    tokens (explanations report that position); unpooled points need no such list."""
    reps = pooled.representatives
    return {} if reps == list(range(len(reps))) else {"token_positions": reps}


def pick(values: Sequence[Any] | np.ndarray | None, reps: list[int]) -> list[Any]:
    """The entries of a per-token list kept for the representatives (empty when there was none)."""
    if values is None or len(values) == 0:
        return []
    return [values[i] for i in reps]
