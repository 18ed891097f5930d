package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zrep/zrep/internal/testenv"
	"github.com/zrep/zrep/zfs"
)

// compressible: what zfs send -L -e -c (which pull uses where both sides
// have them) does for compressible data: a dataset of log-like text,
// compressed with lz4 in 1 MiB records, sent through the raw pipeline
// (ssh host zfs send | zfs recv) without and with those flags, and
// pulled. For each: the bytes on the wire and the time. Only OpenZFS has
// the flags; on zfs-fuse there is nothing to compare.
func (b *bench) compressible(t *testing.T) {
	f, err := zfs.New(&zfs.CLI{}).Features(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !f.SendLargeBlocks || !f.SendEmbedded || !f.SendCompressed {
		t.Skip("this zfs has no zfs send -L -e -c (zfs-fuse): nothing to compare")
	}
	ds := b.src.Name + "/text"
	testenv.Run(t, "zfs", "create", "-o", "compression=lz4", "-o", "recordsize=1M", ds)
	writeCompressible(t, filepath.Join(b.src.Mountpoint, "text", "log"), int64(*benchSize)<<20)
	testenv.Run(t, "zfs", "snapshot", ds+"@s1")
	size := func(prop string) float64 {
		v, err := strconv.ParseFloat(strings.TrimSpace(testenv.Run(t, "zfs", "get", "-H", "-p", "-o", "value", prop, ds+"@s1")), 64)
		if err != nil || v <= 0 {
			t.Fatalf("%s of %s@s1: %v, %v", prop, ds, v, err)
		}
		return v
	}
	logical, physical := size("logicalreferenced"), size("referenced")
	// The target compresses what it receives decompressed with lz4 too, so
	// that both ends store the same.
	root := b.dst.Name + "/text"
	testenv.Run(t, "zfs", "create", "-o", "mountpoint=none", "-o", "compression=lz4", root)

	type result struct {
		bytes int64
		best  time.Duration
	}
	variants := []struct {
		name  string
		flags []string
	}{{"zfs send", nil}, {"zfs send -L -e -c", []string{"-L", "-e", "-c"}}}
	results := make([]result, len(variants)+1) // the last: pull
	for round := 1; round <= 2; round++ {
		line := fmt.Sprintf("compressible, round %d:", round)
		for i, v := range variants {
			target := root + "/raw"
			send := append(append(append([]string{}, b.rawSSH...), "zfs", "send"), v.flags...)
			n, d := countedPipeline(t, exec.Command("ssh", append(send, ds+"@s1")...), exec.Command("zfs", "recv", target))
			sameSnapshots(t, ds, target)
			destroy(t, target)
			results[i] = result{n, minDuration(results[i].best, d)}
			line += fmt.Sprintf(" %s %.1f MiB in %s;", v.name, float64(n)/(1<<20), d.Round(time.Millisecond))
		}
		start := time.Now()
		out := runOutput(t, binary, args("pull", b.pullFlags, "--root", root+"/pull", "--dataset", ds, "--json")...)
		d := time.Since(start)
		n, _ := streamed(t, out)
		sameSnapshots(t, ds, root+"/pull/"+ds)
		destroy(t, root+"/pull")
		results[len(variants)] = result{n, minDuration(results[len(variants)].best, d)}
		b.report.printf("%s pull %.1f MiB in %s", line, float64(n)/(1<<20), d.Round(time.Millisecond))
	}
	plain, lec, pull := results[0], results[1], results[2]
	mib := func(n int64) float64 { return float64(n) / (1 << 20) }
	b.summary = append(b.summary,
		fmt.Sprintf("compressible (%d MiB of text, lz4 %.2fx, 1 MiB records): zfs send %.1f MiB on the wire in %s, -L -e -c %.1f MiB in %s, pull %.1f MiB in %s",
			*benchSize, logical/physical, mib(plain.bytes), plain.best.Round(time.Millisecond), mib(lec.bytes), lec.best.Round(time.Millisecond), mib(pull.bytes), pull.best.Round(time.Millisecond)),
		fmt.Sprintf("lec/plain bytes=%.2f time=%.2f; pull/plain time=%.2f",
			float64(lec.bytes)/float64(plain.bytes), lec.best.Seconds()/plain.best.Seconds(), pull.best.Seconds()/plain.best.Seconds()))
}

// countedPipeline runs send | recv, counting the bytes between them, and
// returns the count and the pipeline's wall time; it fails the test if
// either command fails. The count costs one copy in this process, a
// fraction of a second per GiB: small next to zfs, and the same for every
// variant per byte on the wire.
func countedPipeline(t *testing.T, send, recv *exec.Cmd) (int64, time.Duration) {
	t.Helper()
	stream, err := send.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var sendErr, recvErr strings.Builder
	send.Stderr, recv.Stderr = &sendErr, &recvErr
	counter := &countingReader{r: stream}
	recv.Stdin = counter
	start := time.Now()
	if err := send.Start(); err != nil {
		t.Fatal(err)
	}
	rerr := recv.Run()
	if rerr != nil {
		_ = send.Process.Kill()
	}
	serr := send.Wait()
	d := time.Since(start)
	if serr != nil || rerr != nil {
		t.Fatalf("%s | %s: send: %v %s; recv: %v %s", send, recv, serr, sendErr.String(), rerr, recvErr.String())
	}
	return counter.n.Load(), d
}

type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// writeCompressible writes size bytes of log-like lines (fixed words,
// varying numbers) to path: text that lz4 compresses a few times, as a
// server's logs are.
func writeCompressible(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	rnd := rand.New(rand.NewPCG(1, 2))
	methods := []string{"GET", "GET", "GET", "POST", "PUT", "DELETE"}
	paths := []string{"/api/v1/items", "/api/v1/users", "/static/app.js", "/healthz", "/api/v1/orders"}
	var written int64
	for i := 0; written < size; i++ {
		n, err := fmt.Fprintf(w, "2026-11-26T%02d:%02d:%02d.%06dZ web%d nginx[%d]: %s %s/%d HTTP/1.1 %d %d %.3fms \"Mozilla/5.0 (X11; Linux x86_64)\"\n",
			i/3600000%24, i/60000%60, i/1000%60, rnd.IntN(1000000), rnd.IntN(4), 1000+rnd.IntN(8),
			methods[rnd.IntN(len(methods))], paths[rnd.IntN(len(paths))], rnd.IntN(100000), 200+100*rnd.IntN(3), rnd.IntN(65536), rnd.Float64()*50)
		if err != nil {
			t.Fatal(err)
		}
		written += int64(n)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
