package handlers_test

import (
	"context"
	"io"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/zrep/zrep/api"
	"github.com/zrep/zrep/handlers"
	"github.com/zrep/zrep/rpc"
	"github.com/zrep/zrep/zfs"
)

// encryptedFake is newFake with tank/data/a encrypted, on an OpenZFS that
// has every stream flag.
func encryptedFake() *fakeZFS {
	z := newFake()
	for i := range z.datasets {
		if z.datasets[i].Name == "tank/data/a" {
			z.datasets[i].Encrypted = true
		}
	}
	z.features = zfs.Features{Encryption: true, SendRaw: true, SendLargeBlocks: true, SendEmbedded: true, SendCompressed: true}
	return z
}

// TestRawSends: encrypted datasets go out raw when asked, and only raw
// under raw_only; other datasets as usual; -L -e -c where zfs has them.
func TestRawSends(t *testing.T) {
	tests := []struct {
		name    string
		rawOnly bool
		req     api.SendRequest
		code    rpc.Code // of the refusal, if any
		want    zfs.SendOptions
	}{
		{"encrypted, asked raw", false, api.SendRequest{Dataset: "tank/data/a", To: "tank/data/a@s1", Raw: true}, "",
			zfs.SendOptions{Snapshot: "tank/data/a@s1", Raw: true}},
		{"encrypted, asked plain", false, api.SendRequest{Dataset: "tank/data/a", To: "tank/data/a@s1"}, "",
			zfs.SendOptions{Snapshot: "tank/data/a@s1"}},
		{"encrypted, asked plain, raw_only", true, api.SendRequest{Dataset: "tank/data/a", To: "tank/data/a@s1"}, rpc.CodePermissionDenied, zfs.SendOptions{}},
		{"encrypted, asked raw, raw_only", true, api.SendRequest{Dataset: "tank/data/a", To: "tank/data/a@s1", Raw: true}, "",
			zfs.SendOptions{Snapshot: "tank/data/a@s1", Raw: true}},
		{"not encrypted, asked raw", true, api.SendRequest{Dataset: "tank/data", To: "tank/data@s2", Raw: true}, "",
			zfs.SendOptions{Snapshot: "tank/data@s2"}},
		{"-L -e -c", false, api.SendRequest{Dataset: "tank/data", To: "tank/data@s2", LargeBlocks: true, Embedded: true, Compressed: true}, "",
			zfs.SendOptions{Snapshot: "tank/data@s2", LargeBlocks: true, Embedded: true, Compressed: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			z := encryptedFake()
			var opts []handlers.Option
			if tt.rawOnly {
				opts = append(opts, handlers.RawOnly())
			}
			cl := connect(t, handlers.New(z, policyFor(t, "backup"), zaptest.NewLogger(t), opts...))
			body, err := cl.CallStream(context.Background(), api.MethodSend, tt.req, nil)
			if tt.code != "" {
				if rpc.CodeOf(err) != tt.code || len(z.sendCalls()) != 0 {
					t.Fatalf("got %v, sends %+v; want %s and no zfs send", err, z.sendCalls(), tt.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, body)
			if sends := z.sendCalls(); len(sends) != 1 || sends[0] != tt.want {
				t.Errorf("zfs send %+v, want %+v", sends, tt.want)
			}
		})
	}
}

// TestRawOnlyResume: under raw_only, a token without rawok for an
// encrypted dataset is refused, and one with it resumes raw.
func TestRawOnlyResume(t *testing.T) {
	for _, rawOK := range []bool{false, true} {
		z := encryptedFake()
		cl := connect(t, handlers.New(z, policyFor(t, "backup"), zaptest.NewLogger(t), handlers.RawOnly()))
		tok := (&resumeTokenSpec{toname: "tank/data/a@s1", toguid: 201, rawOK: rawOK}).encode()
		body, err := cl.CallStream(context.Background(), api.MethodSend, api.SendRequest{Dataset: "tank/data/a", ResumeToken: tok}, nil)
		if !rawOK {
			if rpc.CodeOf(err) != rpc.CodePermissionDenied || len(z.sendCalls()) != 0 {
				t.Errorf("a token without rawok: %v, sends %+v", err, z.sendCalls())
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, body)
		if sends := z.sendCalls(); len(sends) != 1 || !sends[0].Raw || sends[0].ResumeToken == "" {
			t.Errorf("zfs send %+v, want raw with the token", sends)
		}
	}
}

// TestListReportsEncryption: the listing says which datasets are encrypted.
func TestListReportsEncryption(t *testing.T) {
	z := encryptedFake()
	cl := session(t, z, "backup")
	var resp api.ListResponse
	body, err := cl.CallStream(context.Background(), api.MethodListFilesystems, api.ListFilesystemsRequest{WithVersions: true}, &resp)
	if err != nil {
		t.Fatal(err)
	}
	fss, _, err := api.ReadListing(body, resp)
	if err != nil {
		t.Fatal(err)
	}
	for _, fs := range fss {
		if fs.Encrypted != (fs.Name == "tank/data/a") {
			t.Errorf("%s: encrypted %v", fs.Name, fs.Encrypted)
		}
	}
}
