package zfs

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
)

// fakeResult is what the fake runner answers to one argv.
type fakeResult struct {
	out string
	err error
}

// fakeRunner is a Runner that answers from a table keyed by the argv joined with spaces.
// The empty argv (feature detection) answers with the given usage text, like zfs does.
type fakeRunner struct {
	mu      sync.Mutex
	usage   string
	results map[string]fakeResult
	calls   [][]string
	seq     map[string][]fakeResult // consumed in order before results
	inputs  []*fakeInput
}

func newFake(usage string) *fakeRunner {
	return &fakeRunner{usage: usage, results: map[string]fakeResult{}, seq: map[string][]fakeResult{}}
}

func (f *fakeRunner) on(args string, out string, err error) *fakeRunner {
	f.results[args] = fakeResult{out: out, err: err}
	return f
}

func (f *fakeRunner) answer(args []string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, append([]string(nil), args...))
	if len(args) == 0 {
		return nil, &CommandError{ExitCode: 2, Stderr: strings.TrimSpace(f.usage)}
	}
	key := strings.Join(args, " ")
	if q := f.seq[key]; len(q) > 0 {
		f.seq[key] = q[1:]
		return []byte(q[0].out), q[0].err
	}
	r, ok := f.results[key]
	if !ok {
		return nil, &CommandError{Args: args, ExitCode: 99, Stderr: "fake: unexpected command"}
	}
	return []byte(r.out), r.err
}

// callsExceptProbe returns the recorded argvs other than the feature probe.
func (f *fakeRunner) callsExceptProbe() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out [][]string
	for _, c := range f.calls {
		if len(c) > 0 {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeRunner) numCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func (f *fakeRunner) Run(ctx context.Context, args ...string) ([]byte, error) {
	return f.answer(args)
}

func (f *fakeRunner) StartOutput(ctx context.Context, args ...string) (io.ReadCloser, error) {
	out, err := f.answer(args)
	return &fakeStream{r: bytes.NewReader(out), err: err}, nil
}

func (f *fakeRunner) StartInput(ctx context.Context, args ...string) (InputStream, error) {
	_, err := f.answer(args)
	in := &fakeInput{closeErr: err}
	f.mu.Lock()
	f.inputs = append(f.inputs, in)
	f.mu.Unlock()
	return in, nil
}

// fakeStream returns its data, then err (or io.EOF), like the real output stream.
type fakeStream struct {
	r      *bytes.Reader
	err    error
	closed bool
}

func (s *fakeStream) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err == io.EOF && s.err != nil {
		return n, s.err
	}
	return n, err
}

func (s *fakeStream) Close() error { s.closed = true; return nil }

type fakeInput struct {
	buf      bytes.Buffer
	closeErr error
	closed   bool
	aborted  bool
}

func (in *fakeInput) Write(p []byte) (int, error) { return in.buf.Write(p) }
func (in *fakeInput) Close() error                { in.closed = true; return in.closeErr }
func (in *fakeInput) Abort() error                { in.aborted = true; return nil }
