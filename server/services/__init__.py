"""The gRPC services: each converts protos to domain calls and back. The only part of the server that
imports the generated protos (mmsearch.v1)."""

from __future__ import annotations

import grpc

from mmsearch.v1 import (
    classify_pb2,
    classify_pb2_grpc,
    collections_pb2,
    collections_pb2_grpc,
    embed_pb2,
    embed_pb2_grpc,
    ingest_pb2,
    ingest_pb2_grpc,
    pages_pb2,
    pages_pb2_grpc,
    rerank_pb2,
    rerank_pb2_grpc,
    search_pb2,
    search_pb2_grpc,
)

from ..catalog import Catalog
from ..classify import Classifier
from ..reindex import Reindexer
from ..search import Searcher
from ..settings import Settings
from .classify import ClassifyServicer
from .ingest import IngestServicer
from .models import ModelServicer
from .pages import PageServicer
from .reindex import ReindexingCollectionServicer
from .search import SearchServicer

#: Full names of the services, for health and reflection.
SERVICE_NAMES = [
    collections_pb2.DESCRIPTOR.services_by_name["CollectionService"].full_name,
    ingest_pb2.DESCRIPTOR.services_by_name["IngestService"].full_name,
    search_pb2.DESCRIPTOR.services_by_name["SearchService"].full_name,
    rerank_pb2.DESCRIPTOR.services_by_name["RerankService"].full_name,
    embed_pb2.DESCRIPTOR.services_by_name["EmbedService"].full_name,
    embed_pb2.DESCRIPTOR.services_by_name["InfoService"].full_name,
    pages_pb2.DESCRIPTOR.services_by_name["PageService"].full_name,
    classify_pb2.DESCRIPTOR.services_by_name["ClassifyService"].full_name,
]


def add_services(server: grpc.Server, catalog: Catalog, settings: Settings) -> None:
    ingest = IngestServicer(catalog, settings)
    # The reindexer pauses a collection's ingest (its document claims) to switch it to new vectors.
    reindexer = Reindexer(catalog, ingest.ingestor.claims, settings.data_dir)
    collections = ReindexingCollectionServicer(catalog, reindexer)
    collections_pb2_grpc.add_CollectionServiceServicer_to_server(collections, server)
    ingest_pb2_grpc.add_IngestServiceServicer_to_server(ingest, server)
    search_pb2_grpc.add_SearchServiceServicer_to_server(SearchServicer(Searcher(catalog, settings)), server)
    models = ModelServicer(catalog, settings)
    rerank_pb2_grpc.add_RerankServiceServicer_to_server(models, server)
    embed_pb2_grpc.add_EmbedServiceServicer_to_server(models, server)
    embed_pb2_grpc.add_InfoServiceServicer_to_server(models, server)
    pages_pb2_grpc.add_PageServiceServicer_to_server(PageServicer(catalog.store, catalog, settings), server)
    classify_pb2_grpc.add_ClassifyServiceServicer_to_server(ClassifyServicer(Classifier(catalog, settings)), server)
