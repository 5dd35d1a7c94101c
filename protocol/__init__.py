"""The protocol's vocabulary, shared by the server, the encoders' users and the client.

`vocab` holds the words (enums, no protos) the domain speaks; `wire` maps them and metadata and filters
to and from the generated protos, for the gRPC services and the client alone. Nothing is imported here,
so importing `vocab` never loads the protos.
"""
