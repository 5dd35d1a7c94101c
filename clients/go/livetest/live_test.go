// Package livetest runs the Go stubs against a live mmsearch server: set MMSEARCH_ADDR=host:port
// (scripts/ci_clients.sh does). Without it the tests skip.
package livetest

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	pb "github.com/mmsearch/mmsearch/clients/go/mmsearchv1"
)

func dial(t *testing.T) *grpc.ClientConn {
	addr := os.Getenv("MMSEARCH_ADDR")
	if addr == "" {
		t.Skip("set MMSEARCH_ADDR=host:port to run against a server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := grpc.DialContext(ctx, addr, grpc.WithInsecure(), grpc.WithBlock())
	if err != nil {
		t.Fatalf("cannot connect to %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestLiveRoundTrip(t *testing.T) {
	conn := dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	h, err := grpc_health_v1.NewHealthClient(conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{})
	if err != nil || h.GetStatus() != grpc_health_v1.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", h, err)
	}

	name := fmt.Sprintf("go_client_%d", time.Now().UnixNano())
	cols := pb.NewCollectionServiceClient(conn)
	if _, err := cols.CreateCollection(ctx, &pb.CreateCollectionRequest{Name: name}); err != nil {
		t.Fatal(err)
	}
	defer cols.DeleteCollection(context.Background(), &pb.DeleteCollectionRequest{Name: name})

	stream, err := pb.NewIngestServiceClient(conn).Ingest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	items := []*pb.IngestItem{
		{Id: "whale", Content: &pb.IngestItem_Text{Text: "The blue whale is the largest animal."}},
		{Id: "bad", Content: &pb.IngestItem_Image{Image: &pb.Image{Data: []byte("not an image"), MimeType: "image/png"}}},
		{Id: "rocket", Content: &pb.IngestItem_Text{Text: "A rocket engine burns fuel to make thrust."}},
	}
	for _, it := range items {
		if err := stream.Send(&pb.IngestRequest{Collection: name, Item: it}); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		ack, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d:%s:%v:%s", ack.GetSequence(), ack.GetId(), ack.GetOk(), ack.GetErrorCode()))
	}
	want := "0:whale:true:,1:bad:false:INVALID_ARGUMENT,2:rocket:true:"
	if strings.Join(got, ",") != want {
		t.Fatalf("acks %v, want %s", got, want)
	}

	res, err := pb.NewSearchServiceClient(conn).Search(ctx, &pb.SearchRequest{
		Collection: name, Query: &pb.Query{Text: "blue whale largest animal"}, TopK: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.GetResults()) == 0 || res.GetResults()[0].GetDocumentId() != "whale" {
		t.Fatalf("search results %v", res.GetResults())
	}

	rr, err := pb.NewRerankServiceClient(conn).Rerank(ctx, &pb.RerankRequest{
		Query: "rocket fuel thrust",
		Documents: []*pb.RerankDocument{
			{Content: &pb.RerankDocument_Text{Text: "The blue whale is the largest animal."}},
			{Content: &pb.RerankDocument_Text{Text: "A rocket engine burns fuel to make thrust."}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rr.GetResults()) != 2 || rr.GetResults()[0].GetIndex() != 1 {
		t.Fatalf("rerank results %v", rr.GetResults())
	}

	_, err = cols.GetCollection(ctx, &pb.GetCollectionRequest{Name: name + "_missing"})
	if s, _ := status.FromError(err); s.Code() != codes.NotFound || !strings.Contains(s.Message(), name+"_missing") {
		t.Fatalf("unknown collection: %v", err)
	}
}
