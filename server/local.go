package server

import (
	"context"
	"io"
	"os"

	"github.com/pkg/errors"
)

// Local serves the endpoint in this process and returns the client's end of
// the stream: the same protocol as over SSH, through a pair of pipes, for
// `--local` and same-host replication. wait returns the session's result
// once the client has closed it.
func Local(ctx context.Context, e *Endpoint, version string) (client io.ReadWriteCloser, wait func() error, err error) {
	c2sR, c2sW, err := os.Pipe()
	if err != nil {
		return nil, nil, errors.Wrap(err, "creating the local pipe")
	}
	s2cR, s2cW, err := os.Pipe()
	if err != nil {
		_, _ = c2sR.Close(), c2sW.Close()
		return nil, nil, errors.Wrap(err, "creating the local pipe")
	}
	for _, f := range []*os.File{c2sW, s2cW} {
		growPipe(f)
	}
	done := make(chan error, 1)
	go func() { done <- e.Serve(ctx, &pipePair{r: c2sR, w: s2cW}, version) }()
	return &pipePair{r: s2cR, w: c2sW}, func() error { return <-done }, nil
}

// pipePair is one end of a duplex stream made of two pipes.
type pipePair struct {
	r *os.File
	w *os.File
}

func (p *pipePair) Read(b []byte) (int, error)  { return p.r.Read(b) }
func (p *pipePair) ChunkSize() int              { return pipeCapacity(p.w) }
func (p *pipePair) Write(b []byte) (int, error) { return p.w.Write(b) }
func (p *pipePair) Close() error {
	werr := p.w.Close()
	rerr := p.r.Close()
	if werr != nil {
		return werr
	}
	return rerr
}
