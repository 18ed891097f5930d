package rpc

import (
	"encoding/binary"
	"fmt"
	"unicode"
)

// ProtocolVersion is the version of the wire format this package speaks.
// Version 2 added the HELLO flags (role inversion for push).
const ProtocolVersion uint16 = 2

// helloInverted, in a HELLO's flags, says that the session's roles are
// inverted: the initiator (the side that sent the first HELLO) serves calls
// and the acceptor makes them. The initiator sets it to ask; the acceptor
// echoes it.
const helloInverted uint16 = 1

// helloMagic starts every HELLO payload, so that a peer that is not zrep
// (a login shell printing a banner, the wrong forced command) is recognised.
var helloMagic = [4]byte{'Z', 'R', 'E', 'P'}

// hello is the content of a HELLO frame:
//
//	bytes 0-3   magic "ZREP"
//	bytes 4-5   protocol version, big-endian
//	bytes 6-7   flags, big-endian: helloInverted, all other bits zero
//	bytes 8-11  the sender's MaxFramePayload, big-endian
//	bytes 12-15 the sender's MaxHeaderBytes, big-endian
//	bytes 16-   the sender's software version, printable ASCII, at most 128 bytes
type hello struct {
	Version         uint16
	Flags           uint16
	MaxFramePayload uint32
	MaxHeaderBytes  uint32
	Software        string
}

func (h hello) appendTo(b []byte) []byte {
	b = append(b, helloMagic[:]...)
	b = binary.BigEndian.AppendUint16(b, h.Version)
	b = binary.BigEndian.AppendUint16(b, h.Flags)
	b = binary.BigEndian.AppendUint32(b, h.MaxFramePayload)
	b = binary.BigEndian.AppendUint32(b, h.MaxHeaderBytes)
	return append(b, h.Software...)
}

// parseHello decodes a HELLO payload whose length the frame rules bounded.
// Only the magic and layout are checked here; the version is compared by
// the caller so that a mismatch can be reported with the peer's details.
func parseHello(p []byte) (hello, error) {
	if len(p) < helloMinLen || len(p) > helloMaxLen {
		return hello{}, protocolErrorf("HELLO payload of %d bytes is outside %d..%d", len(p), helloMinLen, helloMaxLen)
	}
	if [4]byte(p[0:4]) != helloMagic {
		return hello{}, protocolErrorf("HELLO has magic %q, want %q", p[0:4], helloMagic[:])
	}
	h := hello{
		Version:         binary.BigEndian.Uint16(p[4:6]),
		Flags:           binary.BigEndian.Uint16(p[6:8]),
		MaxFramePayload: binary.BigEndian.Uint32(p[8:12]),
		MaxHeaderBytes:  binary.BigEndian.Uint32(p[12:16]),
		Software:        string(p[16:]),
	}
	if h.Flags&^helloInverted != 0 {
		return hello{}, protocolErrorf("HELLO has unknown flags %#04x", h.Flags)
	}
	for _, r := range h.Software {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) {
			return hello{}, protocolErrorf("HELLO software version %q has a non-printable character", h.Software)
		}
	}
	return h, nil
}

// checkLimits validates the limits a peer announced once versions match.
func (h hello) checkLimits() error {
	if h.MaxFramePayload < MinFramePayload || h.MaxFramePayload > MaxFramePayloadLimit {
		return protocolErrorf("peer announced a frame payload limit of %d, outside %d..%d", h.MaxFramePayload, MinFramePayload, MaxFramePayloadLimit)
	}
	if h.MaxHeaderBytes < MinFramePayload/4 {
		return protocolErrorf("peer announced a header limit of %d bytes, less than %d", h.MaxHeaderBytes, MinFramePayload/4)
	}
	return nil
}

func (h hello) String() string {
	return fmt.Sprintf("zrep %s (protocol %d)", h.Software, h.Version)
}
