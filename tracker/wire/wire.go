package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/shoal-network/shoal/checkpoint/content"
)

// Wire format, version 1. A message is
//
//	version (1 byte, WireVersion) | kind (1 byte) | fields
//
// with fields in the order of the struct declaration, each as:
//
//	unsigned integers  uvarint, minimal
//	float32            4 bytes, IEEE 754, little endian
//	bool, Role         1 byte
//	CID                1 byte 0 (undefined) or 1, then the 32-byte sha2-256
//	                   digest (every CID of the protocol is CIDv1, raw, sha2-256)
//	string, bytes      uvarint length, then the bytes
//	list               uvarint count, then the elements
//
// Six fields are optional: Open.Excluded is written only when it is not
// empty or Open.Term follows, Open.Term, the last field of an Open, only
// when it is not 0, Update.Trace, the last field of an Update, only when
// it is defined, Close.AuditKey only when it is not empty or Close.Term
// follows, Close.Term, the last field of a Close, only when it is not 0,
// and Commit.Attempt, the last field of a Commit, only when it is not 0,
// so that these messages without them have the form they had before the
// fields existed. Unmarshal rejects trailing
// bytes, non-minimal varints, an empty optional list written out and
// anything else that Marshal would not have produced.

// WireVersion is the version byte of the wire format.
const WireVersion = 1

// Marshal returns the wire form of a well-formed message.
func Marshal(m Msg) ([]byte, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	e := &wireEncoder{b: make([]byte, 0, 128)}
	e.b = append(e.b, WireVersion, byte(m.Kind()))
	m.encode(e)
	return e.b, nil
}

// Unmarshal decodes and checks a message in wire form. Its errors are
// *MessageError values naming the field at fault.
func Unmarshal(b []byte) (Msg, error) {
	if len(b) > maxMessageSize {
		return nil, msgErr(0, "size", "%d bytes is over the limit of %d", len(b), maxMessageSize)
	}
	if len(b) < 2 {
		return nil, msgErr(0, "header", "%d bytes is too short", len(b))
	}
	if b[0] != WireVersion {
		return nil, msgErr(0, "version", "unknown wire version %d (this build reads %d)", b[0], WireVersion)
	}
	var m Msg
	switch Kind(b[1]) {
	case KindHello:
		m = new(Hello)
	case KindOpen:
		m = new(Open)
	case KindUpdate:
		m = new(Update)
	case KindClose:
		m = new(Close)
	case KindCommit:
		m = new(Commit)
	case KindFinal:
		m = new(Final)
	case KindVerdict:
		m = new(Verdict)
	default:
		return nil, msgErr(0, "kind", "unknown message kind %d", b[1])
	}
	d := &wireDecoder{b: b[2:], kind: m.Kind()}
	m.decode(d)
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, msgErr(m.Kind(), "end", "%d trailing bytes", len(d.b))
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	// The field decoders accept only minimal forms, so a decoded message
	// re-encodes to the same bytes; verify it rather than trust it.
	e := &wireEncoder{b: make([]byte, 0, len(b))}
	e.b = append(e.b, WireVersion, byte(m.Kind()))
	m.encode(e)
	if !bytes.Equal(e.b, b) {
		return nil, msgErr(m.Kind(), "encoding", "not canonical")
	}
	return m, nil
}

type wireEncoder struct{ b []byte }

func (e *wireEncoder) uint(v uint64)  { e.b = binary.AppendUvarint(e.b, v) }
func (e *wireEncoder) byte(v byte)    { e.b = append(e.b, v) }
func (e *wireEncoder) bytes(v []byte) { e.uint(uint64(len(v))); e.b = append(e.b, v...) }
func (e *wireEncoder) str(v string)   { e.uint(uint64(len(v))); e.b = append(e.b, v...) }
func (e *wireEncoder) f32(v float32) {
	e.b = binary.LittleEndian.AppendUint32(e.b, math.Float32bits(v))
}
func (e *wireEncoder) bool(v bool) {
	if v {
		e.byte(1)
	} else {
		e.byte(0)
	}
}

func (e *wireEncoder) cid(c cid.Cid) {
	if !c.Defined() {
		e.byte(0)
		return
	}
	e.byte(1)
	d, err := mh.Decode(c.Hash())
	if err != nil || len(d.Digest) != 32 {
		panic("tracker: encoding a CID that check should have refused")
	}
	e.b = append(e.b, d.Digest...)
}

func (e *wireEncoder) strs(v []string) {
	e.uint(uint64(len(v)))
	for _, s := range v {
		e.str(s)
	}
}

// decoder reads fields; after the first error every read returns zero
// values and the error stays.
type wireDecoder struct {
	b     []byte
	kind  Kind
	err   error
	field string
}

func (d *wireDecoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = msgErr(d.kind, d.field, format, args...)
	}
}

func (d *wireDecoder) at(field string) *wireDecoder {
	if d.err == nil {
		d.field = field
	}
	return d
}

func (d *wireDecoder) uint(max uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("truncated or overlong varint")
		return 0
	}
	if n != len(binary.AppendUvarint(nil, v)) {
		d.fail("non-minimal varint")
		return 0
	}
	if v > max {
		d.fail("%d is over the limit of %d", v, max)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *wireDecoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.b) {
		d.fail("truncated: want %d bytes, have %d", n, len(d.b))
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *wireDecoder) byte() byte {
	b := d.take(1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (d *wireDecoder) bool() bool {
	switch d.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail("boolean must be 0 or 1")
	return false
}

func (d *wireDecoder) f32() float32 {
	b := d.take(4)
	if b == nil {
		return 0
	}
	return math.Float32frombits(binary.LittleEndian.Uint32(b))
}

func (d *wireDecoder) bytes(max int) []byte {
	n := d.uint(uint64(max))
	b := d.take(int(n))
	if len(b) == 0 {
		return nil
	}
	return bytes.Clone(b)
}

func (d *wireDecoder) str(max int) string { return string(d.bytes(max)) }

func (d *wireDecoder) cid() cid.Cid {
	switch d.byte() {
	case 0:
		return cid.Undef
	case 1:
	default:
		if d.err == nil {
			d.fail("CID presence byte must be 0 or 1")
		}
		return cid.Undef
	}
	dg := d.take(32)
	if dg == nil {
		return cid.Undef
	}
	return content.OfDigest([32]byte(dg))
}

// count reads a list length and checks it against max and against the
// bytes left (every element takes at least minSize bytes), so a hostile
// count cannot make the decoder allocate.
func (d *wireDecoder) count(max, minSize int) int {
	n := d.uint(uint64(max))
	if d.err == nil && n*uint64(minSize) > uint64(len(d.b)) {
		d.fail("%d elements cannot fit in %d bytes", n, len(d.b))
		return 0
	}
	return int(n)
}

func (d *wireDecoder) strs(max, maxLen int) []string {
	n := d.count(max, 1)
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = d.str(maxLen)
	}
	return out
}

func (m *Hello) encode(e *wireEncoder) {
	e.cid(m.Round)
	e.byte(byte(m.Role))
	e.uint(m.Step)
	e.cid(m.Head)
	e.bytes(m.Token)
	e.uint(m.Time)
}

func (m *Hello) decode(d *wireDecoder) {
	m.Round = d.at("round").cid()
	m.Role = Role(d.at("role").byte())
	m.Step = d.at("step").uint(math.MaxUint64)
	m.Head = d.at("head").cid()
	m.Token = d.at("token").bytes(MaxToken)
	m.Time = d.at("time").uint(math.MaxUint64)
}

func (m *Open) encode(e *wireEncoder) {
	e.cid(m.Round)
	e.uint(m.Step)
	e.uint(uint64(m.Attempt))
	e.uint(uint64(m.Epoch))
	e.cid(m.Base)
	e.strs(m.Members)
	e.uint(uint64(m.Units))
	e.uint(uint64(len(m.Checks)))
	for _, c := range m.Checks {
		e.uint(c.Step)
		e.uint(uint64(c.Unit))
		e.cid(c.Base)
		e.str(c.Checker)
		e.uint(uint64(c.Attempt))
		e.strs(c.Peers)
	}
	if len(m.Excluded) > 0 || m.Term > 0 {
		e.strs(m.Excluded)
	}
	if m.Term > 0 {
		e.uint(m.Term)
	}
}

func (m *Open) decode(d *wireDecoder) {
	m.Round = d.at("round").cid()
	m.Step = d.at("step").uint(math.MaxUint64)
	m.Attempt = uint32(d.at("attempt").uint(MaxAttempt - 1))
	m.Epoch = uint32(d.at("epoch").uint(math.MaxUint32))
	m.Base = d.at("base").cid()
	m.Members = d.at("members").strs(MaxMembers, MaxPeerLen)
	m.Units = uint32(d.at("units").uint(MaxUnits))
	n := d.at("checks").count(MaxChecks, 38)
	if n > 0 {
		m.Checks = make([]Check, n)
	}
	for i := range m.Checks {
		f := fmt.Sprintf("checks[%d].", i)
		c := &m.Checks[i]
		c.Step = d.at(f + "step").uint(math.MaxUint64)
		c.Unit = uint32(d.at(f + "unit").uint(MaxUnits))
		c.Base = d.at(f + "base").cid()
		c.Checker = d.at(f + "checker").str(MaxPeerLen)
		c.Attempt = uint32(d.at(f + "attempt").uint(MaxAttempt - 1))
		c.Peers = d.at(f+"peers").strs(MaxCheckPeers, MaxPeerLen)
	}
	if d.err == nil && len(d.b) > 0 {
		m.Excluded = d.at("excluded").strs(MaxExcluded, MaxPeerLen)
	}
	if d.err == nil && len(d.b) > 0 {
		m.Term = d.at("term").uint(math.MaxUint64)
	}
}

func (m *Update) encode(e *wireEncoder) {
	e.cid(m.Round)
	e.uint(m.Step)
	e.uint(uint64(m.Attempt))
	e.cid(m.Base)
	e.uint(uint64(m.Unit))
	e.byte(m.Replica)
	e.uint(uint64(m.Samples))
	e.f32(m.Loss)
	e.cid(m.Raw)
	e.cid(m.Residual)
	e.cid(m.Payload)
	e.uint(m.Size)
	e.bytes(m.Data)
	if m.Trace.Defined() {
		e.cid(m.Trace)
	}
}

func (m *Update) decode(d *wireDecoder) {
	m.Round = d.at("round").cid()
	m.Step = d.at("step").uint(math.MaxUint64)
	m.Attempt = uint32(d.at("attempt").uint(MaxAttempt - 1))
	m.Base = d.at("base").cid()
	m.Unit = uint32(d.at("unit").uint(MaxUnits))
	m.Replica = d.at("replica").byte()
	m.Samples = uint32(d.at("samples").uint(math.MaxUint32))
	m.Loss = d.at("loss").f32()
	m.Raw = d.at("raw").cid()
	m.Residual = d.at("residual").cid()
	m.Payload = d.at("payload").cid()
	m.Size = d.at("size").uint(math.MaxInt64)
	m.Data = d.at("data").bytes(MaxInline)
	if d.err == nil && len(d.b) > 0 {
		m.Trace = d.at("trace").cid()
	}
}

func (m *Close) encode(e *wireEncoder) {
	e.cid(m.Round)
	e.uint(m.Step)
	e.uint(uint64(m.Epoch))
	e.cid(m.Base)
	e.uint(uint64(len(m.Included)))
	for _, in := range m.Included {
		e.str(in.Peer)
		e.uint(uint64(in.Unit))
		e.cid(in.Payload)
		e.uint(uint64(in.Weight))
	}
	if len(m.AuditKey) > 0 || m.Term > 0 {
		e.bytes(m.AuditKey)
	}
	if m.Term > 0 {
		e.uint(m.Term)
	}
}

func (m *Close) decode(d *wireDecoder) {
	m.Round = d.at("round").cid()
	m.Step = d.at("step").uint(math.MaxUint64)
	m.Epoch = uint32(d.at("epoch").uint(math.MaxUint32))
	m.Base = d.at("base").cid()
	n := d.at("included").count(MaxUnits, 36)
	if n > 0 {
		m.Included = make([]Included, n)
	}
	for i := range m.Included {
		f := fmt.Sprintf("included[%d].", i)
		in := &m.Included[i]
		in.Peer = d.at(f + "peer").str(MaxPeerLen)
		in.Unit = uint32(d.at(f + "unit").uint(MaxUnits))
		in.Payload = d.at(f + "payload").cid()
		in.Weight = uint32(d.at(f + "weight").uint(math.MaxUint32))
	}
	if d.err == nil && len(d.b) > 0 {
		m.AuditKey = d.at("audit_key").bytes(AuditKeySize)
	}
	if d.err == nil && len(d.b) > 0 {
		m.Term = d.at("term").uint(math.MaxUint64)
	}
}

func (m *Commit) encode(e *wireEncoder) {
	e.cid(m.Round)
	e.uint(m.Step)
	e.cid(m.Base)
	e.cid(m.Result)
	if m.Attempt > 0 {
		e.uint(uint64(m.Attempt))
	}
}

func (m *Commit) decode(d *wireDecoder) {
	m.Round = d.at("round").cid()
	m.Step = d.at("step").uint(math.MaxUint64)
	m.Base = d.at("base").cid()
	m.Result = d.at("result").cid()
	if d.err == nil && len(d.b) > 0 {
		m.Attempt = uint32(d.at("attempt").uint(MaxAttempt - 1))
		if m.Attempt == 0 {
			d.fail("0 written out: an attempt of 0 is left out")
		}
	}
}

func (m *Final) encode(e *wireEncoder) {
	e.cid(m.Round)
	e.uint(m.Step)
	e.cid(m.Base)
	e.cid(m.Checkpoint)
	e.strs(m.Providers)
}

func (m *Final) decode(d *wireDecoder) {
	m.Round = d.at("round").cid()
	m.Step = d.at("step").uint(math.MaxUint64)
	m.Base = d.at("base").cid()
	m.Checkpoint = d.at("checkpoint").cid()
	m.Providers = d.at("providers").strs(MaxProviders, MaxPeerLen)
}

func (m *Verdict) encode(e *wireEncoder) {
	e.cid(m.Round)
	e.uint(m.Step)
	e.uint(uint64(m.Unit))
	e.bool(m.Checked)
	e.cid(m.Raw)
	e.strs(m.Bad)
	if len(m.Withheld) > 0 {
		e.strs(m.Withheld)
	}
}

func (m *Verdict) decode(d *wireDecoder) {
	m.Round = d.at("round").cid()
	m.Step = d.at("step").uint(math.MaxUint64)
	m.Unit = uint32(d.at("unit").uint(MaxUnits))
	m.Checked = d.at("checked").bool()
	m.Raw = d.at("raw").cid()
	m.Bad = d.at("bad").strs(MaxBad, MaxPeerLen)
	if d.err == nil && len(d.b) > 0 {
		m.Withheld = d.at("withheld").strs(MaxCheckPeers, MaxPeerLen)
	}
}
