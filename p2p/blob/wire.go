package blob

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/shoal-network/shoal/checkpoint/content"
)

// ProtocolID is the blob exchange's stream protocol. A stream carries a
// sequence of requests, each answered in turn before the next is read; the
// requester ends it by closing its side, the responder after an idle
// timeout or any malformed request.
//
//	request:  version (1 byte, 1) | op (1 byte, 1 = get)
//	          | uvarint CID length | CID bytes | uvarint max response length
//	response: status (1 byte) | if status is OK: uvarint length | bytes
//
// The CID must be CIDv1/raw/sha2-256 and the max response length at most
// MaxObjectSize; varints are minimal. The responder sends an object only if
// it fits the requester's bound, and the requester verifies the bytes
// against the CID before keeping them.
const ProtocolID protocol.ID = "/shoal/blob/1.0.0"

const (
	wireVersion = 1
	opGet       = 1
	// maxCIDLen bounds the CID field; a CIDv1/raw/sha2-256 CID is 36 bytes.
	maxCIDLen = 64
	// maxRequestLen bounds a whole request on the wire.
	maxRequestLen = 2 + binary.MaxVarintLen64 + maxCIDLen + binary.MaxVarintLen64
)

// Status is a response's first byte.
type Status byte

// Response statuses.
const (
	StatusOK         Status = 0
	StatusNotFound   Status = 1
	StatusBusy       Status = 2
	StatusTooLarge   Status = 3
	StatusBadRequest Status = 4
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusNotFound:
		return "not found"
	case StatusBusy:
		return "busy"
	case StatusTooLarge:
		return "too large"
	case StatusBadRequest:
		return "bad request"
	}
	return fmt.Sprintf("status(%d)", byte(s))
}

// request asks for one object of at most MaxLen bytes.
type request struct {
	CID    cid.Cid
	MaxLen int
}

// errBadRequest wraps every request decoding failure.
var errBadRequest = errors.New("malformed blob request")

func (r request) encode() []byte {
	cb := r.CID.Bytes()
	out := make([]byte, 0, 2+2*binary.MaxVarintLen64+len(cb))
	out = append(out, wireVersion, opGet)
	out = binary.AppendUvarint(out, uint64(len(cb)))
	out = append(out, cb...)
	out = binary.AppendUvarint(out, uint64(r.MaxLen))
	return out
}

// readRequest decodes one request from r, reading at most maxRequestLen
// bytes of it.
func readRequest(r io.ByteReader) (request, error) {
	bad := func(format string, args ...any) (request, error) {
		return request{}, fmt.Errorf("%w: %s", errBadRequest, fmt.Sprintf(format, args...))
	}
	version, err := r.ReadByte()
	if err != nil {
		return bad("version: %v", err)
	}
	if version != wireVersion {
		return bad("unknown version %d", version)
	}
	op, err := r.ReadByte()
	if err != nil {
		return bad("op: %v", err)
	}
	if op != opGet {
		return bad("unknown op %d", op)
	}
	n, err := readUvarint(r)
	if err != nil {
		return bad("CID length: %v", err)
	}
	if n == 0 || n > maxCIDLen {
		return bad("CID length %d outside [1, %d]", n, maxCIDLen)
	}
	cb := make([]byte, n)
	for i := range cb {
		if cb[i], err = r.ReadByte(); err != nil {
			return bad("CID: %v", err)
		}
	}
	used, c, err := cid.CidFromBytes(cb)
	if err != nil {
		return bad("CID: %v", err)
	}
	if used != len(cb) {
		return bad("CID field has %d trailing bytes", len(cb)-used)
	}
	if err := content.Check(c); err != nil {
		return bad("CID %s: %v", c, err)
	}
	maxLen, err := readUvarint(r)
	if err != nil {
		return bad("max length: %v", err)
	}
	if maxLen == 0 || maxLen > MaxObjectSize {
		return bad("absurd size: max length %d outside [1, %d]", maxLen, MaxObjectSize)
	}
	return request{CID: c, MaxLen: int(maxLen)}, nil
}

// errBadResponse wraps every response decoding failure: a responder that
// sends one is misbehaving.
var errBadResponse = errors.New("malformed blob response")

// readResponseHeader decodes a response's status and, for StatusOK, its
// length, which must not exceed maxLen.
func readResponseHeader(r io.ByteReader, maxLen int) (Status, int, error) {
	b, err := r.ReadByte()
	if err != nil {
		return 0, 0, err
	}
	st := Status(b)
	switch st {
	case StatusNotFound, StatusBusy, StatusTooLarge, StatusBadRequest:
		return st, 0, nil
	case StatusOK:
	default:
		return 0, 0, fmt.Errorf("%w: unknown status %d", errBadResponse, b)
	}
	n, err := readUvarint(r)
	if err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return 0, 0, err
		}
		return 0, 0, fmt.Errorf("%w: length: %v", errBadResponse, err)
	}
	if n > uint64(maxLen) {
		return 0, 0, fmt.Errorf("%w: absurd size: %d bytes offered, at most %d asked", errBadResponse, n, maxLen)
	}
	return StatusOK, int(n), nil
}

func appendResponseHeader(out []byte, st Status, n int) []byte {
	out = append(out, byte(st))
	if st == StatusOK {
		out = binary.AppendUvarint(out, uint64(n))
	}
	return out
}

var (
	errVarintOverflow = errors.New("varint overflows 64 bits")
	errVarintLong     = errors.New("varint not minimally encoded")
)

// readUvarint reads a minimally encoded unsigned varint from r.
func readUvarint(r io.ByteReader) (uint64, error) {
	var v uint64
	for i := 0; i < binary.MaxVarintLen64; i++ {
		b, err := r.ReadByte()
		if err != nil {
			if err == io.EOF && i > 0 {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		if i == binary.MaxVarintLen64-1 && b > 1 {
			return 0, errVarintOverflow
		}
		v |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			if i > 0 && b == 0 {
				return 0, errVarintLong
			}
			return v, nil
		}
	}
	return 0, errVarintOverflow
}
