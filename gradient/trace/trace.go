// Package trace commits a worker to every inner step of a work unit, so
// that a dispute between two replicas is settled by recomputing one inner
// step instead of all H.
//
// While it trains a unit, a worker hashes its training state after each
// inner step: leaf k is the SHA-256 of the canonical bytes of the state
// after k inner steps (leaf 0 the state it starts from: the base
// checkpoint's parameters and a fresh optimizer; leaf H the state it
// ends in). The H+1 leaves form a Trace, stored as a small blob whose CID
// the worker's update names; the CID commits to every leaf, and the blob
// (32 bytes a leaf) is small enough to fetch whole, so no Merkle path is
// needed to open a single leaf.
//
// A referee of a dispute fetches the disputants' traces, computes leaf 0
// itself, and finds with Divergence the first leaf d on which they do not
// all agree. Every disputant agrees on leaf d-1, so the state after d-1
// steps, fetched from any of them by its hash (a leaf is the digest of
// the state's CID), is verified by it; the referee recomputes inner step
// d from that state and Liars names the traces whose leaf d differs from
// its own. When all leaves agree the referee derives the pseudo-gradient
// from the agreed final state instead.
//
// Everything here is a pure function of its arguments.
package trace

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"math"
	"unsafe"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/checkpoint/content"
)

// Leaf is the SHA-256 digest of a state's canonical bytes.
type Leaf [sha256.Size]byte

// CID returns the CID of the state blob whose hash the leaf is.
func (l Leaf) CID() cid.Cid { return content.OfDigest(l) }

// Trace is the leaves of a unit: leaf k is the state after k inner steps.
type Trace []Leaf

var traceMagic = [4]byte{'S', 'T', 'R', '1'}

// MaxLeaves bounds the leaves a trace blob may hold.
const MaxLeaves = 1 << 16

// Marshal returns the blob form of a trace: the magic "STR1", the number
// of leaves as a little-endian uint32, then the leaves.
func (t Trace) Marshal() []byte {
	b := make([]byte, 0, 8+len(t)*sha256.Size)
	b = append(b, traceMagic[:]...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(t)))
	for _, l := range t {
		b = append(b, l[:]...)
	}
	return b
}

// ErrMalformed is wrapped by the errors of Unmarshal and UnmarshalState.
var ErrMalformed = errors.New("trace: malformed")

// Unmarshal decodes a trace blob that must hold exactly leaves leaves
// (H+1 for a unit of H inner steps). It checks the length before it
// allocates anything.
func Unmarshal(b []byte, leaves int) (Trace, error) {
	if leaves < 1 || leaves > MaxLeaves {
		return nil, fmt.Errorf("%w: %d leaves asked for", ErrMalformed, leaves)
	}
	if len(b) != 8+leaves*sha256.Size {
		return nil, fmt.Errorf("%w: %d bytes, a trace of %d leaves has %d", ErrMalformed, len(b), leaves, 8+leaves*sha256.Size)
	}
	if !bytes.Equal(b[:4], traceMagic[:]) {
		return nil, fmt.Errorf("%w: not a trace", ErrMalformed)
	}
	if n := binary.LittleEndian.Uint32(b[4:]); n != uint32(leaves) {
		return nil, fmt.Errorf("%w: %d leaves, want %d", ErrMalformed, n, leaves)
	}
	t := make(Trace, leaves)
	for i := range t {
		copy(t[i][:], b[8+i*sha256.Size:])
	}
	return t, nil
}

// Divergence returns the first leaf index on which the traces (all of
// one length, at least one) do not all agree with each other, leaf 0
// also compared with the referee's own leaf0; len(traces[0]) if they
// agree everywhere.
func Divergence(leaf0 Leaf, traces []Trace) int {
	n := len(traces[0])
	for _, t := range traces {
		if len(t) != n {
			panic("trace: Divergence of traces of different lengths")
		}
		if t[0] != leaf0 {
			return 0
		}
	}
	for d := 1; d < n; d++ {
		for _, t := range traces[1:] {
			if t[d] != traces[0][d] {
				return d
			}
		}
	}
	return n
}

// Liars reports, for each trace, whether its leaf d differs from want,
// the referee's own leaf d.
func Liars(d int, want Leaf, traces []Trace) []bool {
	out := make([]bool, len(traces))
	for i, t := range traces {
		out[i] = t[d] != want
	}
	return out
}

// State is the training state of a unit after Steps inner steps: the
// parameters and AdamW's moments, one slice per parameter in order.
// Everything else the next step depends on (the learning rate, the
// optimizer's bias corrections, the batch) follows from the round, the
// unit and Steps.
type State struct {
	Steps  uint64
	Params [][]float32
	M, V   [][]float32
}

var stateMagic = [4]byte{'S', 'S', 'T', '1'}

// Size returns the length of the state's canonical bytes.
func (s *State) Size() int {
	n := 12
	for i := range s.Params {
		n += 4 * (len(s.Params[i]) + len(s.M[i]) + len(s.V[i]))
	}
	return n
}

// Marshal returns the canonical bytes of the state: the magic "SST1",
// Steps as a little-endian uint64, then every parameter, then every first
// moment, then every second moment, as little-endian float32s.
func (s *State) Marshal() []byte {
	b := make([]byte, 0, s.Size())
	s.write(func(p []byte) { b = append(b, p...) }, nil)
	return b
}

// Hasher computes leaves, reusing its buffers; the zero value is ready.
// It is not safe for concurrent use.
type Hasher struct {
	h   hash.Hash
	buf []byte
}

// Leaf returns the SHA-256 of the state's canonical bytes, computed
// without materialising them.
func (x *Hasher) Leaf(s *State) Leaf {
	if x.h == nil {
		x.h = sha256.New()
		x.buf = make([]byte, 0, 32<<10)
	}
	x.h.Reset()
	x.buf = s.write(func(p []byte) { x.h.Write(p) }, x.buf)
	var l Leaf
	x.h.Sum(l[:0])
	return l
}

// write passes the canonical bytes of s to out in pieces, converting
// through buf (grown if needed) on a big-endian machine, and returns buf.
// On a little-endian machine the floats' memory is their canonical
// bytes, passed as it is.
func (s *State) write(out func([]byte), buf []byte) []byte {
	if cap(buf) < 32<<10 {
		buf = make([]byte, 0, 32<<10)
	}
	b := append(buf[:0], stateMagic[:]...)
	b = binary.LittleEndian.AppendUint64(b, s.Steps)
	for _, group := range [][][]float32{s.Params, s.M, s.V} {
		for _, v := range group {
			if littleEndian {
				out(b)
				b = b[:0]
				out(floatBytes(v))
				continue
			}
			for len(v) > 0 {
				n := min(len(v), (cap(b)-len(b))/4)
				if n == 0 {
					out(b)
					b = b[:0]
					continue
				}
				for _, x := range v[:n] {
					b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
				}
				v = v[n:]
			}
		}
	}
	out(b)
	return b[:0]
}

var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// floatBytes returns the memory of f as bytes.
func floatBytes(f []float32) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(f))), 4*len(f))
}

// UnmarshalState decodes a state's canonical bytes for parameters of the
// given sizes, checking the length before it allocates anything.
func UnmarshalState(b []byte, sizes []int) (*State, error) {
	want := 12
	for _, n := range sizes {
		want += 12 * n
	}
	if len(b) != want {
		return nil, fmt.Errorf("%w: state of %d bytes, want %d", ErrMalformed, len(b), want)
	}
	if !bytes.Equal(b[:4], stateMagic[:]) {
		return nil, fmt.Errorf("%w: not a training state", ErrMalformed)
	}
	s := &State{Steps: binary.LittleEndian.Uint64(b[4:])}
	off := 12
	group := func() [][]float32 {
		g := make([][]float32, len(sizes))
		for i, n := range sizes {
			v := make([]float32, n)
			for j := range v {
				v[j] = math.Float32frombits(binary.LittleEndian.Uint32(b[off:]))
				off += 4
			}
			g[i] = v
		}
		return g
	}
	s.Params, s.M, s.V = group(), group(), group()
	return s, nil
}
