package client_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/zrep/zrep/api"
	"github.com/zrep/zrep/client"
	"github.com/zrep/zrep/rpc"
)

// A source that answers a listing without a body is an error, not a crash.
func TestListingWithoutBody(t *testing.T) {
	srv, err := rpc.NewServer(rpc.Config{})
	if err != nil {
		t.Fatal(err)
	}
	noBody := func(ctx context.Context, _ api.ListFilesystemsRequest) (*api.ListResponse, error) {
		return &api.ListResponse{Filesystems: 3}, nil
	}
	noBodyVersions := func(ctx context.Context, _ api.ListVersionsRequest) (*api.ListResponse, error) {
		return &api.ListResponse{Versions: 3}, nil
	}
	if err := srv.Register(api.MethodListFilesystems, noBody); err != nil {
		t.Fatal(err)
	}
	if err := srv.Register(api.MethodListVersions, noBodyVersions); err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	go func() { _ = srv.ServeConn(context.Background(), b) }()
	src, err := client.Connect(context.Background(), a, rpc.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := src.ListFilesystems(context.Background(), true); err == nil || !strings.Contains(err.Error(), "no listing") {
		t.Errorf("ListFilesystems without a body: %v", err)
	}
	if _, err := src.ListVersions(context.Background(), "tank/a"); err == nil || !strings.Contains(err.Error(), "no listing") {
		t.Errorf("ListVersions without a body: %v", err)
	}
}
