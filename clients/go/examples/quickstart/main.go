// Quickstart: create a collection, stream in two texts, search, rerank, delete the collection.
//
//	go run ./examples/quickstart -addr 127.0.0.1:50051
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	pb "github.com/mmsearch/mmsearch/clients/go/mmsearchv1"
)

func main() {
	addr := flag.String("addr", envOr("MMSEARCH_ADDR", "127.0.0.1:50051"), "host:port of the mmsearch server")
	collection := flag.String("collection", "quickstart-go", "collection to create (deleted at the end)")
	flag.Parse()
	if err := run(*addr, *collection); err != nil {
		// Server errors keep their gRPC code and message.
		if s, ok := status.FromError(err); ok {
			log.Fatalf("%s: %s", s.Code(), s.Message())
		}
		log.Fatal(err)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func run(addr, collection string) error {
	// A clear error within the deadline when nothing answers at addr.
	dialCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := grpc.DialContext(dialCtx, addr, grpc.WithInsecure(), grpc.WithBlock())
	if err != nil {
		return fmt.Errorf("cannot connect to mmsearch server at %s: %w", addr, err)
	}
	defer conn.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	health, err := grpc_health_v1.NewHealthClient(conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{})
	if err != nil {
		return err
	}
	fmt.Println("health:", health.GetStatus())

	collections := pb.NewCollectionServiceClient(conn)
	if _, err := collections.CreateCollection(ctx, &pb.CreateCollectionRequest{Name: collection}); err != nil {
		return err
	}
	defer collections.DeleteCollection(context.Background(), &pb.DeleteCollectionRequest{Name: collection})

	acks, err := Ingest(ctx, pb.NewIngestServiceClient(conn), collection, []*pb.IngestItem{
		{Id: "whale", Content: &pb.IngestItem_Text{Text: "The blue whale is the largest animal known to have lived."}},
		{Id: "rocket", Content: &pb.IngestItem_Text{Text: "A rocket engine burns fuel and oxidiser to make thrust."}},
	})
	if err != nil {
		return err
	}
	for _, a := range acks {
		fmt.Printf("ack %d %s ok=%v points=%d %s %s\n", a.GetSequence(), a.GetId(), a.GetOk(), a.GetPoints(), a.GetErrorCode(), a.GetError())
	}

	res, err := pb.NewSearchServiceClient(conn).Search(ctx, &pb.SearchRequest{
		Collection: collection, Query: &pb.Query{Text: "largest animal"}, TopK: 3,
	})
	if err != nil {
		return err
	}
	for _, r := range res.GetResults() {
		fmt.Printf("search: %.3f %s %q\n", r.GetScore(), r.GetDocumentId(), r.GetSnippet())
	}

	rr, err := pb.NewRerankServiceClient(conn).Rerank(ctx, &pb.RerankRequest{
		Query: "what makes thrust",
		Documents: []*pb.RerankDocument{
			{Content: &pb.RerankDocument_Text{Text: "Whales eat krill."}},
			{Content: &pb.RerankDocument_Text{Text: "Rocket engines make thrust."}},
		},
	})
	if err != nil {
		return err
	}
	for _, r := range rr.GetResults() {
		fmt.Printf("rerank: #%d %.3f\n", r.GetIndex(), r.GetRelevanceScore())
	}
	return nil
}

// Ingest streams items and collects one acknowledgement per item, sending and receiving concurrently.
func Ingest(ctx context.Context, c pb.IngestServiceClient, collection string, items []*pb.IngestItem) ([]*pb.IngestAck, error) {
	stream, err := c.Ingest(ctx)
	if err != nil {
		return nil, err
	}
	sendErr := make(chan error, 1)
	go func() {
		for _, it := range items {
			if err := stream.Send(&pb.IngestRequest{Collection: collection, Item: it}); err != nil {
				sendErr <- err // the real error comes from Recv
				return
			}
		}
		sendErr <- stream.CloseSend()
	}()
	var acks []*pb.IngestAck
	for {
		ack, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return acks, err
		}
		acks = append(acks, ack)
	}
	if err := <-sendErr; err != nil && err != io.EOF {
		return acks, err
	}
	return acks, nil
}
