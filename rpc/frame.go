package rpc

import (
	"encoding/binary"
	"fmt"
	"io"
)

// FrameType identifies the kind of a frame. The numbering is part of the wire
// format (see PROTOCOL.md) and never changes within a protocol version.
type FrameType uint8

// The frame types of protocol version 1.
const (
	FrameHello    FrameType = 0x01 // first frame from each side: magic, version, limits
	FrameHeaders  FrameType = 0x02 // a fragment of a message's JSON header
	FrameData     FrameType = 0x03 // a chunk of a message body
	FrameEnd      FrameType = 0x04 // the body ended completely
	FrameReset    FrameType = 0x05 // the body was aborted; payload is a JSON Error
	FrameCancel   FrameType = 0x06 // the client asks the server to abort the call in progress
	FrameClose    FrameType = 0x07 // orderly teardown; payload is a UTF-8 reason
	FrameCloseAck FrameType = 0x08 // acknowledges a CLOSE
	FramePing     FrameType = 0x09 // liveness probe; 8 opaque bytes
	FramePong     FrameType = 0x0a // answer to a PING, echoing its 8 bytes
)

var frameNames = [...]string{
	FrameHello:    "HELLO",
	FrameHeaders:  "HEADERS",
	FrameData:     "DATA",
	FrameEnd:      "END",
	FrameReset:    "RESET",
	FrameCancel:   "CANCEL",
	FrameClose:    "CLOSE",
	FrameCloseAck: "CLOSE_ACK",
	FramePing:     "PING",
	FramePong:     "PONG",
}

// String returns the frame type's name as PROTOCOL.md spells it.
func (t FrameType) String() string {
	if int(t) < len(frameNames) && frameNames[t] != "" {
		return frameNames[t]
	}
	return fmt.Sprintf("UNKNOWN_FRAME_TYPE_0x%02x", uint8(t))
}

// Flags are per-frame bits; which ones are allowed depends on the type.
type Flags uint8

// Frame flags.
const (
	// FlagEndHeaders marks the last HEADERS frame of a message header.
	FlagEndHeaders Flags = 0x01
	// FlagBody, on the last HEADERS frame, announces that a body follows.
	FlagBody Flags = 0x02
)

// Has reports whether all bits of v are set in f.
func (f Flags) Has(v Flags) bool { return f&v == v }

// FrameHeaderLen is the size of the fixed frame header on the wire.
const FrameHeaderLen = 8

// Limits of the wire format itself; Config chooses values within them.
const (
	// MinFramePayload is the smallest frame payload limit a peer may announce.
	MinFramePayload = 16 << 10
	// MaxFramePayloadLimit is the largest frame payload limit a peer may announce.
	MaxFramePayloadLimit = 16 << 20

	helloMinLen    = 16
	maxSoftwareLen = 128
	helloMaxLen    = helloMinLen + maxSoftwareLen
	maxResetLen    = 64 << 10
	maxCloseLen    = 1 << 10
	pingLen        = 8
)

// FrameHeader is the fixed 8-byte header that starts every frame:
//
//	byte 0     type
//	byte 1     flags
//	bytes 2-3  reserved, zero
//	bytes 4-7  payload length, big-endian uint32
type FrameHeader struct {
	Type   FrameType
	Flags  Flags
	Length uint32
}

func (h FrameHeader) String() string {
	return fmt.Sprintf("%s flags=0x%02x len=%d", h.Type, uint8(h.Flags), h.Length)
}

// putFrameHeader writes h into the first FrameHeaderLen bytes of b.
func putFrameHeader(b []byte, h FrameHeader) {
	b[0] = byte(h.Type)
	b[1] = byte(h.Flags)
	b[2], b[3] = 0, 0
	binary.BigEndian.PutUint32(b[4:8], h.Length)
}

// frameRule is what the receiver accepts for one frame type.
type frameRule struct {
	flags  Flags  // allowed flag bits
	minLen uint32 // smallest payload
	maxLen uint32 // largest payload; limitFromConfig means the receiver's MaxFramePayload
}

const limitFromConfig = ^uint32(0)

var frameRules = [...]frameRule{
	FrameHello:    {0, helloMinLen, helloMaxLen},
	FrameHeaders:  {FlagEndHeaders | FlagBody, 0, limitFromConfig},
	FrameData:     {0, 1, limitFromConfig},
	FrameEnd:      {0, 0, 0},
	FrameReset:    {0, 2, maxResetLen},
	FrameCancel:   {0, 0, 0},
	FrameClose:    {0, 0, maxCloseLen},
	FrameCloseAck: {0, 0, 0},
	FramePing:     {0, pingLen, pingLen},
	FramePong:     {0, pingLen, pingLen},
}

// parseFrameHeader decodes and validates a frame header against the rules
// of its type and the receiver's payload limit. It never allocates on behalf
// of the peer: the length is checked before anyone reads the payload.
func parseFrameHeader(b []byte, maxPayload uint32) (FrameHeader, error) {
	h := FrameHeader{
		Type:   FrameType(b[0]),
		Flags:  Flags(b[1]),
		Length: binary.BigEndian.Uint32(b[4:8]),
	}
	if int(h.Type) >= len(frameRules) || frameNames[h.Type] == "" {
		return h, protocolErrorf("unknown frame type 0x%02x", uint8(h.Type))
	}
	if b[2] != 0 || b[3] != 0 {
		return h, protocolErrorf("%s frame has non-zero reserved bytes 0x%02x%02x", h.Type, b[2], b[3])
	}
	rule := frameRules[h.Type]
	if h.Flags&^rule.flags != 0 {
		return h, protocolErrorf("%s frame has undefined flags 0x%02x", h.Type, uint8(h.Flags&^rule.flags))
	}
	if h.Flags.Has(FlagBody) && !h.Flags.Has(FlagEndHeaders) {
		return h, protocolErrorf("HEADERS frame has the BODY flag without END_HEADERS")
	}
	limit := rule.maxLen
	if limit == limitFromConfig {
		limit = maxPayload
	}
	if h.Length > limit {
		return h, protocolErrorf("%s frame payload of %d bytes exceeds the limit of %d", h.Type, h.Length, limit)
	}
	if h.Length < rule.minLen {
		return h, protocolErrorf("%s frame payload of %d bytes is shorter than the minimum of %d", h.Type, h.Length, rule.minLen)
	}
	return h, nil
}

// readFrameHeader reads and validates one frame header from r into buf.
// A clean EOF before the first byte is returned as io.EOF; an EOF inside the
// header is a protocol error wrapping io.ErrUnexpectedEOF.
func readFrameHeader(r io.Reader, buf *[FrameHeaderLen]byte, maxPayload uint32) (FrameHeader, error) {
	n, err := io.ReadFull(r, buf[:])
	if err != nil {
		if err == io.EOF {
			return FrameHeader{}, io.EOF
		}
		if err == io.ErrUnexpectedEOF {
			return FrameHeader{}, &ProtocolError{
				Reason: fmt.Sprintf("truncated frame: connection ended after %d of %d header bytes", n, FrameHeaderLen),
				Err:    io.ErrUnexpectedEOF,
			}
		}
		return FrameHeader{}, err
	}
	return parseFrameHeader(buf[:], maxPayload)
}

// readPayload reads exactly h.Length payload bytes into a new slice. Callers
// only use it for frames whose length parseFrameHeader already bounded.
func readPayload(r io.Reader, h FrameHeader) ([]byte, error) {
	p := make([]byte, h.Length)
	if err := readFull(r, p, h); err != nil {
		return nil, err
	}
	return p, nil
}

// readFull fills p from r; an early EOF is a truncated-frame protocol error.
func readFull(r io.Reader, p []byte, h FrameHeader) error {
	n, err := io.ReadFull(r, p)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return truncatedFrame(h.Type, n, len(p))
	}
	return err
}

// truncatedFrame is the error for a stream that ended inside a frame's payload.
func truncatedFrame(t FrameType, got, want int) *ProtocolError {
	return &ProtocolError{
		Reason: fmt.Sprintf("truncated %s frame: connection ended after %d of %d payload bytes", t, got, want),
		Err:    io.ErrUnexpectedEOF,
	}
}
