// Command rpcbench measures what the rpc frame layer costs on top of the
// pipes it runs over.
//
// Both measurements move the same number of bytes through the same kind of
// pipes, with one relay process in the middle:
//
//	raw: source | cat                          | sink
//	rpc: source | server (body = its input) ==> client (discards the body)
//
// where ==> is a pair of os.Pipes carrying the rpc protocol, exactly as
// sshd would connect a forced command. The source writes zeros; the sink
// and the client read with 1 MiB buffers. Each side runs once per round,
// alternating; the best round of each is reported, then calls per second
// for small calls over the same kind of pipes, and last `ratio=X.XX`
// (rpc throughput / raw throughput).
//
// Every pipe of both setups has the same size: by default 1 MiB, what zrep
// grows its own pipes to (serve's stdin/stdout, zfs send's stdout, the
// puller's pipes to ssh); -pipe-size 0 keeps the system's 64 KiB.
//
// Usage: rpcbench [-size 4GiB] [-rounds 3] [-calls 20000] [-pipe-size N]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zrep/zrep/rpc"
)

func main() {
	if len(os.Args) > 1 {
		if role, ok := roles[os.Args[1]]; ok {
			if dir := os.Getenv("RPCBENCH_CPUPROFILE"); dir != "" {
				f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%d.prof", os.Args[1], os.Getpid())))
				if err == nil && pprof.StartCPUProfile(f) == nil {
					defer pprof.StopCPUProfile()
				}
			}
			if err := role(os.Args[2:]); err != nil {
				fmt.Fprintf(os.Stderr, "rpcbench %s: %v\n", os.Args[1], err)
				pprof.StopCPUProfile()
				os.Exit(1)
			}
			return
		}
	}
	if err := drive(); err != nil {
		fmt.Fprintf(os.Stderr, "rpcbench: %v\n", err)
		os.Exit(1)
	}
}

// roles are the child processes the driver starts (re-executing itself).
var roles = map[string]func(args []string) error{
	"source":     source,
	"sink":       sink,
	"rpc-server": rpcServer,
	"rpc-client": rpcClient,
}

func drive() error {
	sizeFlag := flag.String("size", "4GiB", "bytes to move per measurement (suffixes KiB, MiB, GiB)")
	rounds := flag.Int("rounds", 3, "measurements of each kind; the best is reported")
	calls := flag.Int("calls", 20000, "small calls for the calls-per-second figure")
	flag.IntVar(&pipeSize, "pipe-size", 1<<20, "size every pipe of both setups is grown to (zrep grows its pipes to 1 MiB); 0 keeps the system default")
	flag.Parse()
	size, err := parseSize(*sizeFlag)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	fmt.Printf("moving %s per round, %d rounds, %d-core machine, pipes of %d bytes in both setups\n", *sizeFlag, *rounds, numCPU(), pipeSize)
	var bestRaw, bestRPC time.Duration
	for i := 0; i < *rounds; i++ {
		raw, err := timeRaw(self, size)
		if err != nil {
			return fmt.Errorf("raw round %d: %w", i+1, err)
		}
		rpcT, err := timeRPC(self, size)
		if err != nil {
			return fmt.Errorf("rpc round %d: %w", i+1, err)
		}
		fmt.Printf("round %d: raw %s (%.0f MiB/s), rpc %s (%.0f MiB/s)\n", i+1,
			raw.Round(time.Millisecond), mibps(size, raw), rpcT.Round(time.Millisecond), mibps(size, rpcT))
		bestRaw = best(bestRaw, raw)
		bestRPC = best(bestRPC, rpcT)
	}
	cps, err := callsPerSecond(self, *calls)
	if err != nil {
		return fmt.Errorf("calls: %w", err)
	}
	fmt.Printf("raw (source | cat | sink):       %.0f MiB/s\n", mibps(size, bestRaw))
	fmt.Printf("rpc (source | server ==> client): %.0f MiB/s\n", mibps(size, bestRPC))
	fmt.Printf("small calls: %.0f calls/s\n", cps)
	fmt.Printf("ratio=%.2f\n", float64(bestRaw)/float64(bestRPC))
	return nil
}

func best(cur, d time.Duration) time.Duration {
	if cur == 0 || d < cur {
		return d
	}
	return cur
}

func mibps(size int64, d time.Duration) float64 { return float64(size) / (1 << 20) / d.Seconds() }

// pipeSize is what newPipe grows pipes to.
var pipeSize int

// newPipe makes a pipe of pipeSize, the same for both setups.
func newPipe() (r, w *os.File) {
	r, w, err := os.Pipe()
	if err != nil {
		panic(err)
	}
	if pipeSize > 0 {
		if _, err := unix.FcntlInt(w.Fd(), unix.F_SETPIPE_SZ, pipeSize); err != nil {
			panic(err)
		}
	}
	return r, w
}

// timeRaw runs source | cat | sink.
func timeRaw(self string, size int64) (time.Duration, error) {
	r1, w1 := newPipe()
	r2, w2 := newPipe()
	src := exec.Command(self, "source", strconv.FormatInt(size, 10))
	src.Stdout, src.Stderr = w1, os.Stderr
	relay := exec.Command("cat")
	relay.Stdin, relay.Stdout, relay.Stderr = r1, w2, os.Stderr
	dst := exec.Command(self, "sink", strconv.FormatInt(size, 10))
	dst.Stdin, dst.Stderr = r2, os.Stderr
	return runAll([]*os.File{r1, w1, r2, w2}, src, relay, dst)
}

// timeRPC runs source | rpc-server ==> rpc-client.
func timeRPC(self string, size int64) (time.Duration, error) {
	srcR, srcW := newPipe()
	toClientR, toClientW := newPipe()
	toServerR, toServerW := newPipe()
	src := exec.Command(self, "source", strconv.FormatInt(size, 10))
	src.Stdout, src.Stderr = srcW, os.Stderr
	server := exec.Command(self, "rpc-server")
	server.Stdin, server.Stdout, server.Stderr = toServerR, toClientW, os.Stderr
	server.ExtraFiles = []*os.File{srcR} // fd 3: the body
	client := exec.Command(self, "rpc-client", "stream", strconv.FormatInt(size, 10))
	client.Stdin, client.Stdout, client.Stderr = toClientR, toServerW, os.Stderr
	return runAll([]*os.File{srcR, srcW, toClientR, toClientW, toServerR, toServerW}, src, server, client)
}

func callsPerSecond(self string, n int) (float64, error) {
	toClientR, toClientW := newPipe()
	toServerR, toServerW := newPipe()
	server := exec.Command(self, "rpc-server")
	server.Stdin, server.Stdout, server.Stderr = toServerR, toClientW, os.Stderr
	client := exec.Command(self, "rpc-client", "calls", strconv.Itoa(n))
	client.Stdin, client.Stdout, client.Stderr = toClientR, toServerW, os.Stderr
	var out strings.Builder
	client.ExtraFiles = nil
	client.Stderr = &out
	if _, err := runAll([]*os.File{toClientR, toClientW, toServerR, toServerW}, server, client); err != nil {
		return 0, fmt.Errorf("%w: %s", err, out.String())
	}
	var d time.Duration
	if _, err := fmt.Sscanf(strings.TrimSpace(out.String()), "elapsed=%d", &d); err != nil {
		return 0, fmt.Errorf("client output %q: %w", out.String(), err)
	}
	return float64(n) / d.Seconds(), nil
}

// runAll starts the commands, closes the parent's pipe ends, and waits.
func runAll(files []*os.File, cmds ...*exec.Cmd) (time.Duration, error) {
	start := time.Now()
	for _, c := range cmds {
		if err := c.Start(); err != nil {
			return 0, err
		}
	}
	for _, f := range files {
		_ = f.Close()
	}
	var firstErr error
	for _, c := range cmds {
		if err := c.Wait(); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("%s: %w", strings.Join(c.Args, " "), err)
		}
	}
	return time.Since(start), firstErr
}

// --- child roles -------------------------------------------------------------

func source(args []string) error {
	size, _ := strconv.ParseInt(args[0], 10, 64)
	buf := make([]byte, 1<<20)
	for size > 0 {
		n, err := os.Stdout.Write(buf[:min(int64(len(buf)), size)])
		if err != nil {
			return err
		}
		size -= int64(n)
	}
	return nil
}

func sink(args []string) error {
	want, _ := strconv.ParseInt(args[0], 10, 64)
	n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{os.Stdin}, make([]byte, 1<<20))
	if err != nil {
		return err
	}
	if n != want {
		return fmt.Errorf("sink got %d bytes, want %d", n, want)
	}
	return nil
}

type stdio struct{}

func (stdio) Read(p []byte) (int, error)  { return os.Stdin.Read(p) }
func (stdio) Write(p []byte) (int, error) { return os.Stdout.Write(p) }

// ChunkSize is what serve's stdio reports: stdout's pipe capacity.
func (stdio) ChunkSize() int {
	n, err := unix.FcntlInt(os.Stdout.Fd(), unix.F_GETPIPE_SZ, 0)
	if err != nil {
		return 0
	}
	return n
}

func (stdio) Close() error {
	_ = os.Stdout.Close()
	return os.Stdin.Close()
}

type streamReq struct{}
type emptyResp struct{}
type echoReq struct {
	N int `json:"n"`
}

func rpcServer([]string) error {
	srv, err := rpc.NewServer(rpc.Config{SoftwareVersion: "rpcbench"})
	if err != nil {
		return err
	}
	body := os.NewFile(3, "body")
	if err := srv.Register("Stream", func(ctx context.Context, _ streamReq) (*emptyResp, io.ReadCloser, error) {
		return &emptyResp{}, body, nil
	}); err != nil {
		return err
	}
	if err := srv.Register("Echo", func(ctx context.Context, r echoReq) (*echoReq, error) { return &r, nil }); err != nil {
		return err
	}
	return srv.ServeConn(context.Background(), stdio{})
}

func rpcClient(args []string) error {
	ctx := context.Background()
	cl, err := rpc.NewClient(ctx, stdio{}, rpc.Config{SoftwareVersion: "rpcbench"})
	if err != nil {
		return err
	}
	defer cl.Close()
	n, _ := strconv.ParseInt(args[1], 10, 64)
	switch args[0] {
	case "stream":
		body, err := cl.CallStream(ctx, "Stream", streamReq{}, nil)
		if err != nil {
			return err
		}
		got, err := io.Copy(io.Discard, body)
		if err != nil {
			return err
		}
		if got != n {
			return fmt.Errorf("client got %d bytes, want %d", got, n)
		}
	case "calls":
		start := time.Now()
		for i := 0; i < int(n); i++ {
			var resp echoReq
			if err := cl.Call(ctx, "Echo", echoReq{N: i}, &resp); err != nil {
				return err
			}
			if resp.N != i {
				return fmt.Errorf("echo %d came back as %d", i, resp.N)
			}
		}
		fmt.Fprintf(os.Stderr, "elapsed=%d\n", time.Since(start))
	}
	return cl.Close()
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if strings.HasSuffix(s, suffix) {
			s, mult = strings.TrimSuffix(s, suffix), m
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

func numCPU() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "processor\t:")
}
