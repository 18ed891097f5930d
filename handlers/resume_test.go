package handlers_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/zrep/zrep/api"
	"github.com/zrep/zrep/nvlist"
	"github.com/zrep/zrep/resumetoken"
	"github.com/zrep/zrep/rpc"
)

// token is a resume token as a receiver would hold it for toname.
func token(toname string, toguid, fromguid uint64) string {
	return (&resumetoken.Token{ToName: toname, ToGUID: toguid, FromGUID: fromguid, Object: 3, Offset: 1 << 20, Bytes: 3 << 20}).Encode()
}

// TestResume: a token for an allowed snapshot, full or incremental from a
// snapshot or bookmark, resumes with a token encoded anew from its fields.
func TestResume(t *testing.T) {
	for _, tt := range []struct {
		name  string
		token string
		from  string
	}{
		{"full", token("tank/data@s2", 102, 0), ""},
		{"from a snapshot", token("tank/data@s3", 103, 102), "tank/data@s2"},
		{"from a bookmark's guid: the snapshot is named", token("tank/data@s2", 102, 101), "tank/data@s1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			z := newFake()
			cl := session(t, z, "backup")
			var resp api.SendResponse
			body, err := cl.CallStream(context.Background(), api.MethodSend, api.SendRequest{Dataset: "tank/data", ResumeToken: tt.token}, &resp)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, body); err != nil {
				t.Fatal(err)
			}
			sends := z.sendCalls()
			if len(sends) != 1 || sends[0].ResumeToken != tt.token || sends[0].From != "" {
				t.Fatalf("zfs send calls %+v", sends)
			}
			if (resp.From == nil) != (tt.from == "") || resp.From != nil && resp.From.Name != tt.from {
				t.Errorf("response from %+v, want %q", resp.From, tt.from)
			}
		})
	}
}

// TestResumeForgedTokens: tokens forged by hand, each refused without
// running zfs send; those for datasets the identity may not see answer
// exactly as a missing dataset does.
func TestResumeForgedTokens(t *testing.T) {
	extra := func() string {
		l, _ := resumetoken.Inspect(token("tank/data@s2", 102, 0))
		l.Pairs = append(l.Pairs, nvlist.Pair{Name: "savedok", Type: nvlist.Boolean})
		return resumetoken.EncodeList(l)
	}()
	good := token("tank/data@s2", 102, 0)
	tests := []struct {
		name    string
		dataset string
		token   string
		code    rpc.Code
		want    string // the whole message; "" to only check the code
	}{
		// openzfs#14153: an allowed toname with the guid of a denied snapshot.
		{"allowed toname, denied snapshot's guid", "tank/data", token("tank/data@s2", 301, 0), rpc.CodeNotFound, `"tank/data@s2" has guid 102, not 301: the version the request names was destroyed and re-created`},
		{"toname of a denied dataset", "tank/data/private", token("tank/data/private@s1", 301, 0), rpc.CodeNotFound, `dataset "tank/data/private" does not exist`},
		{"toname of a denied dataset, asked for under an allowed one", "tank/data", token("tank/data/private@s1", 301, 0), rpc.CodeNotFound, `dataset "tank/data/private" does not exist`},
		{"toname of a missing dataset", "tank/data/nope", token("tank/data/nope@s1", 5, 0), rpc.CodeNotFound, `dataset "tank/data/nope" does not exist`},
		{"toname of a dataset outside every root", "tank/data", token("pool2/x@p1", 701, 0), rpc.CodeNotFound, `dataset "pool2/x" does not exist`},
		{"another allowed dataset than asked", "tank/data", token("tank/vm@v1", 501, 0), rpc.CodeInvalidArgument, `the resume token is for "tank/vm@v1", not for dataset "tank/data"`},
		{"a missing snapshot", "tank/data", token("tank/data@gone", 102, 0), rpc.CodeNotFound, `"tank/data@gone" does not exist`},
		{"fromguid of another dataset", "tank/data", token("tank/data@s2", 102, 501), rpc.CodeNotFound, "incremental base (guid 501) is no snapshot or bookmark"},
		{"fromguid newer than toname", "tank/data", token("tank/data@s2", 102, 103), rpc.CodeNotFound, "older than"},
		{"bad checksum", "tank/data", strings.Replace(good, "-", "-1", 1), rpc.CodeInvalidArgument, ""},
		{"truncated", "tank/data", good[:len(good)-10], rpc.CodeInvalidArgument, ""},
		{"oversized", "tank/data", good + strings.Repeat("0", 9000), rpc.CodeInvalidArgument, ""},
		{"extra fields (savedok)", "tank/data", extra, rpc.CodeInvalidArgument, ""},
		{"not a token", "tank/data", "-w", rpc.CodeInvalidArgument, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			z := newFake()
			cl := session(t, z, "backup")
			err := cl.Call(context.Background(), api.MethodSend, api.SendRequest{Dataset: tt.dataset, ResumeToken: tt.token}, nil)
			if rpc.CodeOf(err) != tt.code {
				t.Fatalf("got %v, want code %s", err, tt.code)
			}
			if tt.want != "" {
				var e *rpc.Error
				if !errors.As(err, &e) || !strings.Contains(e.Message, tt.want) {
					t.Errorf("message %v, want %q", err, tt.want)
				}
			}
			if sends := z.sendCalls(); len(sends) != 0 {
				t.Errorf("zfs send ran: %+v", sends)
			}
		})
	}
}

// TestResumeDeniedLooksMissing: a token naming a denied dataset gets the
// very answer a token naming a missing one gets, after the same zfs calls.
func TestResumeDeniedLooksMissing(t *testing.T) {
	answer := func(dataset string) (string, []call) {
		z := newFake()
		cl := session(t, z, "backup")
		err := cl.Call(context.Background(), api.MethodSend, api.SendRequest{Dataset: dataset, ResumeToken: token(dataset+"@s1", 301, 0)}, nil)
		calls := z.Calls()
		for i := range calls {
			if calls[i].Arg == dataset {
				calls[i].Arg = "<asked>"
			}
		}
		return strings.ReplaceAll(err.Error(), dataset, "<asked>"), calls
	}
	denied, deniedCalls := answer("tank/data/private")
	missing, missingCalls := answer("tank/data/privat")
	if denied != missing {
		t.Errorf("denied: %s\nmissing: %s", denied, missing)
	}
	if len(deniedCalls) != len(missingCalls) {
		t.Errorf("zfs calls differ: %v vs %v", deniedCalls, missingCalls)
	}
}

// TestResumeRequestIsTheTokenOnly: a token says what to send; naming more
// is refused.
func TestResumeRequestIsTheTokenOnly(t *testing.T) {
	z := newFake()
	cl := session(t, z, "backup")
	err := cl.Call(context.Background(), api.MethodSend, api.SendRequest{Dataset: "tank/data", To: "tank/data@s3", ResumeToken: token("tank/data@s2", 102, 0)}, nil)
	if rpc.CodeOf(err) != rpc.CodeInvalidArgument || len(z.sendCalls()) != 0 {
		t.Fatalf("got %v, sends %v", err, z.sendCalls())
	}
}

// resumeTokenSpec builds a token with rawok set or not.
type resumeTokenSpec struct {
	toname         string
	toguid, fromID uint64
	rawOK          bool
}

func (s *resumeTokenSpec) encode() string {
	return (&resumetoken.Token{ToName: s.toname, ToGUID: s.toguid, FromGUID: s.fromID, Object: 1, Offset: 1, Bytes: 1, RawOK: s.rawOK}).Encode()
}
