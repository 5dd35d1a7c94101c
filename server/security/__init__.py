"""Who may do what: API keys with roles and collection scopes (keys.py), the gRPC interceptor that
enforces them with per-key limits and an audit log (interceptor.py), TLS (tls.py). The principal of
the current call (principal.py) is what the services read; it imports no gRPC."""
