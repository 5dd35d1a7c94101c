"""How new collections on a Qdrant server are laid out (shards, replicas, HNSW graph, on-disk
vectors, quantisation) and how they are searched (HNSW breadth, rescoring of quantised vectors).

The options touch only the graph-searched first-stage vectors (`<space>_dense`, and the pooled rows
and columns `<space>_rowcol` of ColPali spaces). Token vectors stay as dialect.exact_only lays them
out: no graph, memory-mapped, scored exactly over candidates; their compression is the collection's
own (spec.Compression), which the datatype already carries. A collection keeps the layout it was
created with: Qdrant fixes shards and quantisation at creation, and `RemoteStore` reads a
collection's quantisation back from Qdrant rather than from the current settings.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any, Literal

from qdrant_client import models as qm

from .records import APPROXIMATE, Breadth

Quantization = Literal["none", "scalar", "binary", "product", "turbo"]
#: The compression ratios Qdrant's product quantisation accepts (qdrant_client.models.CompressionRatio).
ProductCompression = Literal["x4", "x8", "x16", "x32", "x64"]
#: The bit widths of Qdrant's TurboQuant quantisation (qdrant_client.models.TurboQuantBitSize).
TurboBits = Literal["bits1", "bits1_5", "bits2", "bits4", "bits8"]

#: Named vectors ending so are searched exactly over candidates and never get these options.
EXACT_SUFFIX = "_tokens"
LEXICAL = "lexical"  # the sparse BM25 vector (dialect.sparse_vectors): its own index, not a graph


@dataclass(frozen=True)
class RemoteOptions:
    """The defaults are the layout before these options existed: shards chosen by the server,
    one replica, the server's HNSW defaults, vectors in RAM, no quantisation."""

    shard_number: int = 0  # 0: chosen by the server (one per node of the cluster at creation)
    replication_factor: int = 1
    hnsw_m: int = 0  # edges per graph node; 0: the server's default (16)
    hnsw_ef_construct: int = 0  # build-time search breadth; 0: the server's default (100)
    on_disk: bool = False  # first-stage vectors memory-mapped instead of held in RAM
    hnsw_on_disk: bool = False  # their HNSW graph memory-mapped too
    hnsw_ef: int = 0  # search-time breadth in the graph; 0: the server's default (ef_construct)
    quantization: Quantization = "none"
    product_compression: ProductCompression = "x16"
    turbo_bits: TurboBits = "bits4"
    rescore: bool = True  # quantised searches re-rank their candidates with the stored vectors
    oversampling: float = 2.0  # ...taking this many times `limit` candidates from the quantised index

    def __post_init__(self) -> None:
        # The settings validate these already; a store built in code gets the same messages.
        if self.shard_number < 0:
            raise ValueError("shard_number must be 0 (chosen by the server) or positive")
        if self.replication_factor < 1:
            raise ValueError("replication_factor must be at least 1")
        if self.hnsw_m < 0 or self.hnsw_ef < 0:
            raise ValueError("hnsw_m and hnsw_ef must be 0 (the server's default) or positive")
        if self.hnsw_ef_construct != 0 and self.hnsw_ef_construct < 4:
            raise ValueError("hnsw_ef_construct must be 0 (the server's default) or at least 4 (Qdrant's minimum)")
        if self.quantization not in typing.get_args(Quantization):
            raise ValueError(f"quantization must be none, scalar, binary, product or turbo, not {self.quantization!r}")
        if self.product_compression not in typing.get_args(ProductCompression):
            raise ValueError(
                f"product quantisation's compression must be x4, x8, x16, x32 or x64, not {self.product_compression!r}"
            )
        if self.turbo_bits not in typing.get_args(TurboBits):
            raise ValueError(f"TurboQuant's bits must be one of {', '.join(typing.get_args(TurboBits))}")
        if self.oversampling < 1:
            raise ValueError("oversampling must be at least 1 (1: no extra candidates)")

    def hnsw_config(self) -> qm.HnswConfigDiff | None:
        """None where every field is the server's default (what collections got before)."""
        if not (self.hnsw_m or self.hnsw_ef_construct or self.hnsw_on_disk):
            return None
        return qm.HnswConfigDiff(
            m=self.hnsw_m or None, ef_construct=self.hnsw_ef_construct or None, on_disk=self.hnsw_on_disk or None
        )

    def quantization_config(self) -> qm.QuantizationConfig | None:
        """The quantised copy is kept in RAM (always_ram): with on_disk vectors that is the layout
        Qdrant recommends, the small copy searched in memory and only candidates read from disk.
        always_ram (deprecated in Qdrant 1.20 for `memory`, still accepted) works with older servers too."""
        if self.quantization == "scalar":
            return qm.ScalarQuantization(scalar=qm.ScalarQuantizationConfig(type=qm.ScalarType.INT8, always_ram=True))
        if self.quantization == "binary":
            return qm.BinaryQuantization(binary=qm.BinaryQuantizationConfig(always_ram=True))
        if self.quantization == "product":
            ratio = qm.CompressionRatio(self.product_compression)
            return qm.ProductQuantization(product=qm.ProductQuantizationConfig(compression=ratio, always_ram=True))
        if self.quantization == "turbo":
            bits = qm.TurboQuantBitSize(self.turbo_bits)
            return qm.TurboQuantization(turbo=qm.TurboQuantQuantizationConfig(bits=bits, always_ram=True))
        return None

    def vectors(self, vectors: dict[str, Any]) -> dict[str, Any]:
        """The dialect's vector params with these options on the first-stage vectors."""
        update: dict[str, Any] = {
            "on_disk": True if self.on_disk else None,
            "hnsw_config": self.hnsw_config(),
            "quantization_config": self.quantization_config(),
        }
        update = {k: v for k, v in update.items() if v is not None}
        if not update:
            return vectors
        return {
            name: params if name.endswith(EXACT_SUFFIX) else params.model_copy(update=update)
            for name, params in vectors.items()
        }

    def search_params(self, using: str, quantised: bool, breadth: Breadth = APPROXIMATE) -> qm.SearchParams | None:
        """Search parameters of a query on the named vector `using` (quantised: it has a quantised
        copy; breadth: the search's own ef, or exact); None where the server's defaults apply (what
        every search sent before)."""
        graph = graph_searched(using)
        if graph and breadth.exact:  # every point, at full precision: neither the graph nor the quantised copy
            return qm.SearchParams(exact=True, quantization=qm.QuantizationSearchParams(ignore=True))
        ef = (breadth.hnsw_ef or self.hnsw_ef or None) if graph else None
        quantization = (
            qm.QuantizationSearchParams(rescore=self.rescore, oversampling=self.oversampling) if quantised else None
        )
        if ef is None and quantization is None:
            return None
        return qm.SearchParams(hnsw_ef=ef, quantization=quantization)


def graph_searched(using: str) -> bool:
    """Whether a named vector is searched through an HNSW graph (not tokens, not the sparse BM25 one)."""
    return not using.endswith(EXACT_SUFFIX) and using != LEXICAL


def quantised_vectors(info: qm.CollectionInfo) -> set[str]:
    """The named vectors of a collection (get_collection) that carry a quantised copy: their own
    quantization_config, or the collection's where they do not override it."""
    params = info.config.params.vectors
    named = params if isinstance(params, dict) else {}
    default = info.config.quantization_config
    return {name for name, p in named.items() if (p.quantization_config or default) is not None}
