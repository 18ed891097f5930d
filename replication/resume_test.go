package replication

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/zrep/zrep/resumetoken"
	"github.com/zrep/zrep/rpc"
	"github.com/zrep/zrep/zfs"
)

// resumeToken is the token a cut receive of toname leaves.
func resumeToken(toname string, toguid, fromguid uint64) string {
	return (&resumetoken.Token{ToName: toname, ToGUID: toguid, FromGUID: fromguid, Object: 2, Offset: 4096, Bytes: 5 << 20}).Encode()
}

// TestRunResumes: a target with a usable token gets the rest of the cut
// transfer (zfs send -t), then the steps after it; the events say so.
func TestRunResumes(t *testing.T) {
	a1, a2, a3 := snap("tank/a", "s1", 11, 10), snap("tank/a", "s2", 12, 20), snap("tank/a", "s3", 13, 30)
	const ta = runRoot + "/tank/a"
	for _, tt := range []struct {
		name   string
		target []zfs.Version // nil: a partly received new dataset
		token  string
		steps  []string
		after  string
	}{
		{"a cut full stream", nil, resumeToken("tank/a@s1", 11, 0),
			[]string{"resume @s1 (5.0 MiB already received)", "incremental @s1 -> @s3 (2 snapshots)"}, ta + ": s1=11 s2=12 s3=13"},
		{"a cut incremental stream", []zfs.Version{tsnap(ta, "s1", 11, 5)}, resumeToken("tank/a@s2", 12, 11),
			[]string{"resume @s2 (5.0 MiB already received)", "incremental @s2 -> @s3 (1 snapshot)"}, ta + ": s1=11 s2=12 s3=13"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := newFakeSource(fsys("tank/a", a1, a2, a3))
			dst := newFakeTarget(map[string][]zfs.Version{"backup": nil, runRoot: nil, runRoot + "/tank": nil, ta: tt.target})
			dst.features.ResumeTokens = true
			dst.tokens[ta] = tt.token
			log := &eventLog{}
			sum, err := Run(context.Background(), src, dst, Options{Root: runRoot, Reporter: log})
			if err != nil {
				t.Fatal(err)
			}
			if r := sum.Results[0]; r.Outcome != OutcomeReplicated {
				t.Fatalf("%s: %s", r.Outcome, r.Error)
			}
			if src.sends[0].ResumeToken != tt.token || src.sends[0].To != "" {
				t.Errorf("first send %+v, want only the token", src.sends[0])
			}
			var steps []string
			for _, ev := range log.events {
				if ev.Type == EventStepStart {
					steps = append(steps, ev.Step.String())
					if ev.StepIndex == 1 && (!ev.Step.Resumed || ev.Step.ResumedBytes != 5<<20) {
						t.Errorf("step event %+v does not say it resumed 5 MiB", ev.Step)
					}
				}
			}
			if !reflect.DeepEqual(steps, tt.steps) {
				t.Errorf("steps %q, want %q", steps, tt.steps)
			}
			if got := dst.state(); got[len(got)-1] != tt.after {
				t.Errorf("target %q, want %q", got, tt.after)
			}
			for _, r := range dst.recvs {
				if !r.opts.Resumable {
					t.Errorf("receive into %s without -s", r.opts.Target)
				}
			}
		})
	}
}

// TestRunClearsStaleTokens: a token that can no longer be used is
// discarded (zfs receive -A) and the transfer planned afresh; it never
// loops (zrepl #644).
func TestRunClearsStaleTokens(t *testing.T) {
	a1, a2, a3 := snap("tank/a", "s1", 11, 10), snap("tank/a", "s2", 12, 20), snap("tank/a", "s3", 13, 30)
	const ta = runRoot + "/tank/a"
	for _, tt := range []struct {
		name   string
		target []zfs.Version
		token  string
		why    string
		sends  []string
	}{
		{"its snapshot was destroyed on the source", nil, resumeToken("tank/a@gone", 99, 0), "is no longer on the source",
			[]string{"tank/a @s1=11", "tank/a @s1=11 -I @s3=13"}},
		{"its snapshot was renamed", []zfs.Version{tsnap(ta, "s1", 11, 5)}, resumeToken("tank/a@old", 12, 11), "is now tank/a@s2 on the source",
			[]string{"tank/a @s1=11 -I @s3=13"}},
		{"its base is not the newest snapshot", []zfs.Version{tsnap(ta, "s1", 11, 5), tsnap(ta, "s2", 12, 6)}, resumeToken("tank/a@s2", 12, 11), "is not the target's newest snapshot",
			[]string{"tank/a @s2=12 -i @s3=13"}},
		{"it does not decode", nil, "1-bad-token-x", "does not decode", []string{"tank/a @s1=11", "tank/a @s1=11 -I @s3=13"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := newFakeSource(fsys("tank/a", a1, a2, a3))
			dst := newFakeTarget(map[string][]zfs.Version{"backup": nil, runRoot: nil, runRoot + "/tank": nil, ta: tt.target})
			dst.features.ResumeTokens = true
			dst.tokens[ta] = tt.token
			log := &eventLog{}
			sum, err := Run(context.Background(), src, dst, Options{Root: runRoot, Reporter: log})
			if err != nil {
				t.Fatal(err)
			}
			if r := sum.Results[0]; r.Outcome != OutcomeReplicated {
				t.Fatalf("%s: %s", r.Outcome, r.Error)
			}
			if !strings.Contains(log.events[0].Plan[0].ClearResume, tt.why) {
				t.Errorf("plan says %q, want %q", log.events[0].Plan[0].ClearResume, tt.why)
			}
			if got := dst.callsTo("AbortResume"); !reflect.DeepEqual(got, []string{"AbortResume " + ta}) {
				t.Errorf("AbortResume calls %q", got)
			}
			var sends []string
			for _, req := range src.sends {
				sends = append(sends, sendString(req))
			}
			if !reflect.DeepEqual(sends, tt.sends) {
				t.Errorf("sends %q, want %q", sends, tt.sends)
			}
			sameSnaps := dst.state()
			if sameSnaps[len(sameSnaps)-1] != ta+": s1=11 s2=12 s3=13" {
				t.Errorf("target %q", sameSnaps)
			}
		})
	}
}

// TestRunStaleTokenWithoutDestroyPermission: an append-only receiver may
// not discard a partial receive (zfs receive -A destroys it): the dataset
// fails, keeps its token, and the error says who can discard it.
func TestRunStaleTokenWithoutDestroyPermission(t *testing.T) {
	const ta = runRoot + "/tank/a"
	src := newFakeSource(fsys("tank/a", snap("tank/a", "s1", 11, 10)))
	dst := newFakeTarget(map[string][]zfs.Version{"backup": nil, runRoot: nil, runRoot + "/tank": nil, ta: nil})
	dst.features.ResumeTokens = true
	dst.tokens[ta] = resumeToken("tank/a@gone", 99, 0)
	dst.abortErr = &zfs.CommandError{Args: []string{"receive", "-A", ta}, ExitCode: 1,
		Stderr: "cannot destroy '" + ta + "': permission denied"}
	sum, err := Run(context.Background(), src, dst, Options{Root: runRoot})
	if err != nil {
		t.Fatal(err)
	}
	r := sum.Results[0]
	if r.Outcome != OutcomeFailed || !strings.Contains(r.Error, "as root: zfs receive -A "+ta) {
		t.Errorf("%s: %s; want a failure that says how to discard it", r.Outcome, r.Error)
	}
	if len(src.sends) != 0 || dst.tokens[ta] == "" {
		t.Errorf("sends %v, token %q: want nothing sent, the token kept", src.sends, dst.tokens[ta])
	}
}

// TestRunResumeRefusedBySource: the snapshot changed between listing and
// sending, and the source refuses the token: it is discarded, so the next
// run starts afresh instead of asking again.
func TestRunResumeRefusedBySource(t *testing.T) {
	a1, a2 := snap("tank/a", "s1", 11, 10), snap("tank/a", "s2", 12, 20)
	const ta = runRoot + "/tank/a"
	src := newFakeSource(fsys("tank/a", a1, a2))
	src.sendErr["tank/a@s2"] = rpc.Errorf(rpc.CodeNotFound, `"tank/a@s2" does not exist`)
	dst := newFakeTarget(map[string][]zfs.Version{"backup": nil, runRoot: nil, runRoot + "/tank": nil, ta: {tsnap(ta, "s1", 11, 5)}})
	dst.features.ResumeTokens = true
	dst.tokens[ta] = resumeToken("tank/a@s2", 12, 11)
	sum, err := Run(context.Background(), src, dst, Options{Root: runRoot})
	if err != nil {
		t.Fatal(err)
	}
	if r := sum.Results[0]; r.Outcome != OutcomeFailed || !strings.Contains(r.Error, "its resume token was discarded and the next run starts it afresh") {
		t.Fatalf("%s: %s", r.Outcome, r.Error)
	}
	if len(dst.tokens) != 0 {
		t.Errorf("the token stayed: %v", dst.tokens)
	}
	delete(src.sendErr, "tank/a@s2")
	if sum, _ = Run(context.Background(), src, dst, Options{Root: runRoot}); sum.Results[0].Outcome != OutcomeReplicated {
		t.Errorf("the next run: %+v", sum.Results[0])
	}
}
