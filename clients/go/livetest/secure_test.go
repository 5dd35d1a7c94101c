package livetest

// The Go stubs against a server started with API keys and mutual TLS: the way a Go service would call
// a secured mmsearch (credentials.NewTLS for the connection, the key as per-RPC metadata). Set
// MMSEARCH_SECURE_ADDR=host:port and MMSEARCH_SECURE_DIR (ca.pem, client.crt, client.key, keys.json:
// scripts/ci_clients.sh makes them with tests/certs.py and starts that server). Without them it skips.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/mmsearch/mmsearch/clients/go/mmsearchv1"
)

// bearer sends the API key with every call; RequireTransportSecurity keeps it off plaintext.
type bearer string

func (k bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(k)}, nil
}
func (bearer) RequireTransportSecurity() bool { return true }

func secureConn(t *testing.T, key string, withClientCert bool) *grpc.ClientConn {
	addr, dir := os.Getenv("MMSEARCH_SECURE_ADDR"), os.Getenv("MMSEARCH_SECURE_DIR")
	if addr == "" || dir == "" {
		t.Skip("set MMSEARCH_SECURE_ADDR and MMSEARCH_SECURE_DIR to run against a secured server")
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.pem holds no certificate")
	}
	cfg := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}
	if withClientCert {
		pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key"))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(cfg))}
	if key != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(key)))
	}
	conn, err := grpc.Dial(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func secureKeys(t *testing.T) map[string]string {
	raw, err := os.ReadFile(filepath.Join(os.Getenv("MMSEARCH_SECURE_DIR"), "keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	if err := json.Unmarshal(raw, &keys); err != nil {
		t.Fatal(err)
	}
	return keys
}

func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if s, _ := status.FromError(err); s.Code() != want {
		t.Fatalf("%s: got %v, want %v", what, err, want)
	}
}

func TestSecuredServer(t *testing.T) {
	anonymous := secureConn(t, "", true)
	keys := secureKeys(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	h, err := grpc_health_v1.NewHealthClient(anonymous).Check(ctx, &grpc_health_v1.HealthCheckRequest{})
	if err != nil || h.GetStatus() != grpc_health_v1.HealthCheckResponse_SERVING {
		t.Fatalf("health over mutual TLS without a key: %v %v", h, err)
	}
	_, err = pb.NewCollectionServiceClient(anonymous).ListCollections(ctx, &pb.ListCollectionsRequest{})
	wantCode(t, "no key", err, codes.Unauthenticated)
	wrongCtx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer not-a-key")
	_, err = pb.NewCollectionServiceClient(anonymous).ListCollections(wrongCtx, &pb.ListCollectionsRequest{})
	wantCode(t, "unknown key", err, codes.Unauthenticated)

	name := fmt.Sprintf("go_secure_%d", time.Now().UnixNano())
	admin := pb.NewCollectionServiceClient(secureConn(t, keys["admin"], true))
	_, err = pb.NewCollectionServiceClient(secureConn(t, keys["write"], true)).CreateCollection(ctx, &pb.CreateCollectionRequest{Name: name})
	wantCode(t, "write key creating a collection", err, codes.PermissionDenied)
	if _, err := admin.CreateCollection(ctx, &pb.CreateCollectionRequest{Name: name}); err != nil {
		t.Fatal(err)
	}
	defer admin.DeleteCollection(context.Background(), &pb.DeleteCollectionRequest{Name: name})

	stream, err := pb.NewIngestServiceClient(secureConn(t, keys["write"], true)).Ingest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	item := &pb.IngestItem{Id: "whale", Content: &pb.IngestItem_Text{Text: "The blue whale is the largest animal."}}
	if err := stream.Send(&pb.IngestRequest{Collection: name, Item: item}); err != nil {
		t.Fatal(err)
	}
	stream.CloseSend()
	if ack, err := stream.Recv(); err != nil || !ack.GetOk() {
		t.Fatalf("ingest with the write key: %v %v", ack, err)
	}

	reader := pb.NewSearchServiceClient(secureConn(t, keys["read"], true))
	res, err := reader.Search(ctx, &pb.SearchRequest{Collection: name, Query: &pb.Query{Text: "largest animal"}, TopK: 1})
	if err != nil || len(res.GetResults()) != 1 || res.GetResults()[0].GetDocumentId() != "whale" {
		t.Fatalf("search with the read key: %v %v", res, err)
	}
	_, err = pb.NewCollectionServiceClient(secureConn(t, keys["read"], true)).DeleteCollection(ctx, &pb.DeleteCollectionRequest{Name: name})
	wantCode(t, "read key deleting a collection", err, codes.PermissionDenied)

	// No client certificate: the server ends the connection after TLS; the call fails UNAVAILABLE.
	short, cancelShort := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelShort()
	_, err = pb.NewCollectionServiceClient(secureConn(t, keys["admin"], false)).ListCollections(short, &pb.ListCollectionsRequest{})
	wantCode(t, "no client certificate", err, codes.Unavailable)
}
