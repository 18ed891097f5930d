package rpc

import (
	"time"
	"unicode"

	"github.com/pkg/errors"
	"go.uber.org/zap"
)

// Config holds every limit and timeout of a session. The zero value is
// valid: each zero field takes the default documented on it.
type Config struct {
	// MaxFramePayload is the largest frame payload this side accepts, and
	// the largest it sends (the smaller of both sides' values is used for
	// sending). Default 1 MiB; allowed 16 KiB to 16 MiB.
	MaxFramePayload int
	// MaxHeaderBytes bounds the JSON header of one message, across all its
	// HEADERS frames. Default 1 MiB; allowed 4 KiB to 64 MiB.
	MaxHeaderBytes int
	// HandshakeTimeout bounds the HELLO exchange. Default 30s. With
	// FirstByteTimeout, it counts from the peer's first byte.
	HandshakeTimeout time.Duration
	// FirstByteTimeout, when set, is how long the handshake waits for the
	// peer's first byte before HandshakeTimeout starts: the time a transport
	// takes to come up (an ssh login on a busy host) is not counted against
	// the peer's HELLO. Zero: HandshakeTimeout counts from the start.
	FirstByteTimeout time.Duration
	// IdleTimeout ends a server session when no frame arrives between calls
	// for this long. Default 10m.
	IdleTimeout time.Duration
	// PingInterval: while a client waits for the server and nothing has
	// arrived for this long, it sends a PING. Default 15s.
	PingInterval time.Duration
	// PingTimeout: a peer that sends nothing at all for this long after a
	// PING is declared dead (ErrPeerUnresponsive). A slow body is not dead as
	// long as the peer answers pings. Default 60s.
	PingTimeout time.Duration
	// CloseTimeout bounds waiting for a CLOSE_ACK and for the end of a
	// canceled body. Default 10s.
	CloseTimeout time.Duration
	// SoftwareVersion is sent in HELLO for the peer's error messages and
	// logs; at most 128 printable characters. Default "unknown".
	SoftwareVersion string
	// Logger receives the session's logs. Default: no logging. Nothing in
	// this package writes to stdout or stderr by itself.
	Logger *zap.Logger
}

// Defaults of Config's fields.
const (
	DefaultMaxFramePayload  = 1 << 20
	DefaultMaxHeaderBytes   = 1 << 20
	DefaultHandshakeTimeout = 30 * time.Second
	DefaultIdleTimeout      = 10 * time.Minute
	DefaultPingInterval     = 15 * time.Second
	DefaultPingTimeout      = 60 * time.Second
	DefaultCloseTimeout     = 10 * time.Second
)

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	setDefault(&c.MaxFramePayload, DefaultMaxFramePayload)
	setDefault(&c.MaxHeaderBytes, DefaultMaxHeaderBytes)
	setDefault(&c.HandshakeTimeout, DefaultHandshakeTimeout)
	setDefault(&c.IdleTimeout, DefaultIdleTimeout)
	setDefault(&c.PingInterval, DefaultPingInterval)
	setDefault(&c.PingTimeout, DefaultPingTimeout)
	setDefault(&c.CloseTimeout, DefaultCloseTimeout)
	if c.SoftwareVersion == "" {
		c.SoftwareVersion = "unknown"
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

func setDefault[T int | time.Duration](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

// Validate reports the first field that is out of range, after defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.MaxFramePayload < MinFramePayload || c.MaxFramePayload > MaxFramePayloadLimit:
		return errors.Errorf("rpc config: MaxFramePayload %d is outside %d..%d", c.MaxFramePayload, MinFramePayload, MaxFramePayloadLimit)
	case c.MaxHeaderBytes < 4<<10 || c.MaxHeaderBytes > 64<<20:
		return errors.Errorf("rpc config: MaxHeaderBytes %d is outside %d..%d", c.MaxHeaderBytes, 4<<10, 64<<20)
	case c.HandshakeTimeout < 0, c.FirstByteTimeout < 0, c.IdleTimeout < 0, c.PingInterval < 0, c.PingTimeout < 0, c.CloseTimeout < 0:
		return errors.New("rpc config: timeouts must not be negative")
	case len(c.SoftwareVersion) > maxSoftwareLen:
		return errors.Errorf("rpc config: SoftwareVersion is %d bytes, more than %d", len(c.SoftwareVersion), maxSoftwareLen)
	}
	for _, r := range c.SoftwareVersion {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) {
			return errors.Errorf("rpc config: SoftwareVersion %q has a non-printable or non-ASCII character", c.SoftwareVersion)
		}
	}
	return nil
}
