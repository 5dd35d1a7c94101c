#!/usr/bin/env bash
# Generates the TypeScript and Go client stubs from protos/ (Python: scripts/gen_protos.sh).
#   scripts/gen_clients.sh           regenerate clients/typescript/src/gen and clients/go/mmsearchv1
#   scripts/gen_clients.sh --check   regenerate into a temp dir; fail if the committed code differs
#
# Pinned tools (the script refuses other versions, so output is reproducible):
#   buf 1.74.0 and protoc-gen-es 2.13.0   npm, pinned in clients/typescript/package-lock.json
#                                          (run `npm ci` in clients/typescript first)
#   protoc-gen-go v1.28.1                  Debian bookworm package protoc-gen-go
#   protoc-gen-go-grpc 1.0 (grpc-go 1.33.3) Debian bookworm package protoc-gen-go-grpc
# buf compiles the protos itself (no protoc needed); templates: buf.gen.yaml (mmsearch.v1, TS + Go) and
# clients/typescript/buf.gen.health.yaml (grpc.health.v1 for TS; Go uses grpc-go's own health stubs).
set -euo pipefail
cd "$(dirname "$0")/.."

BUF_VERSION=1.74.0
ES_VERSION=2.13.0
GO_PLUGIN_VERSION="protoc-gen-go v1.28.1"
GO_GRPC_PLUGIN_VERSION="protoc-gen-go-grpc 1.0"
GO_GRPC_DEB_VERSION=1.33.3  # upstream version of Debian's protoc-gen-go-grpc package

check=0
[ "${1:-}" = "--check" ] && check=1

die() { echo "gen_clients: $*" >&2; exit 1; }
bin=clients/typescript/node_modules/.bin
[ -x "$bin/buf" ] && [ -x "$bin/protoc-gen-es" ] ||
  die "buf/protoc-gen-es missing: run 'npm ci' in clients/typescript"
have=$("$bin/buf" --version)
[ "$have" = "$BUF_VERSION" ] || die "buf $have found, $BUF_VERSION pinned"
have=$("$bin/protoc-gen-es" --version)
[ "$have" = "protoc-gen-es v$ES_VERSION" ] || die "$have found, protoc-gen-es v$ES_VERSION pinned"
command -v protoc-gen-go >/dev/null && command -v protoc-gen-go-grpc >/dev/null ||
  die "protoc-gen-go/protoc-gen-go-grpc missing: apt-get install protoc-gen-go protoc-gen-go-grpc"
have=$(protoc-gen-go --version)
[ "$have" = "$GO_PLUGIN_VERSION" ] || die "$have found, $GO_PLUGIN_VERSION pinned"
have=$(protoc-gen-go-grpc --version)
[ "$have" = "$GO_GRPC_PLUGIN_VERSION" ] || die "$have found, $GO_GRPC_PLUGIN_VERSION pinned"
if command -v dpkg-query >/dev/null; then
  deb=$(dpkg-query -W -f='${Version}' protoc-gen-go-grpc 2>/dev/null || true)
  case "$deb" in "$GO_GRPC_DEB_VERSION"-*|"") ;; *) die "protoc-gen-go-grpc package $deb, $GO_GRPC_DEB_VERSION pinned" ;; esac
fi

# Generated trees, relative to the output root.
TS_GEN=clients/typescript/src/gen
GO_GEN=clients/go/mmsearchv1

out=.
if [ $check = 1 ]; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
else
  rm -rf "$TS_GEN"
  rm -f "$GO_GEN"/*.pb.go
fi
"$bin/buf" generate --template buf.gen.yaml -o "$out"
"$bin/buf" generate clients/typescript/proto --template clients/typescript/buf.gen.health.yaml -o "$out"

if [ $check = 1 ]; then
  stale=0
  show() { diff "$@" | head -20 >&2 || true; }  # a short excerpt of each difference
  if ! diff -rq "$out/$TS_GEN" "$TS_GEN" >&2; then stale=1; show -r "$out/$TS_GEN" "$TS_GEN"; fi
  # The Go package directory may also hold hand-written files: compare the *.pb.go files only.
  want=$(cd "$out/$GO_GEN" && ls -- *.pb.go)
  got=$(cd "$GO_GEN" 2>/dev/null && ls -- *.pb.go 2>/dev/null || true)
  [ "$want" = "$got" ] || { echo "Go stubs: expected files [$(echo $want)], found [$(echo $got)]" >&2; stale=1; }
  for f in $want; do
    if [ -f "$GO_GEN/$f" ] && ! cmp -s "$out/$GO_GEN/$f" "$GO_GEN/$f"; then
      echo "Go stub differs: $GO_GEN/$f" >&2; stale=1; show "$out/$GO_GEN/$f" "$GO_GEN/$f"
    fi
  done
  if [ $stale = 1 ]; then
    echo "generated client stubs are stale (diff above): run scripts/gen_clients.sh" >&2
    exit 1
  fi
  echo "generated TypeScript and Go stubs are up to date"
else
  echo "generated $TS_GEN and $GO_GEN"
fi
