package checkpoint

import (
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// Checkpoint is the state of a training run at one step: named float32
// tensors (the model's parameters and the outer optimizer's state) and a
// few strings of metadata. Its canonical encoding (see Encode) and hence its
// CID depend only on these values, not on the order of Tensors or on when
// or where it was made.
type Checkpoint struct {
	Meta    map[string]string
	Tensors []Tensor
}

// Well-known metadata keys.
const (
	MetaConfig = "config" // the model configuration, as JSON
	MetaModel  = "model"  // the name of the model in the zoo, if it has one
	MetaRound  = "round"  // the CID of the round spec
	MetaStep   = "step"   // the outer step, a decimal integer
	// MetaQuant marks a model quantised for inference ("int8:group=64"):
	// its matrices are codes and scales (see gradient.QuantizeModel),
	// not values to train, merge or export.
	MetaQuant = "quant"
)

// StatePrefix starts the name of every tensor that is optimizer state
// rather than a model parameter. Parameter names must not start with it.
const StatePrefix = "optim."

// MomentumName returns the name under which the outer optimizer's momentum
// buffer of parameter param is stored.
func MomentumName(param string) string { return StatePrefix + "momentum/" + param }

// IsState reports whether name is that of optimizer state.
func IsState(name string) bool { return strings.HasPrefix(name, StatePrefix) }

// Params returns the tensors of c that are model parameters (not optimizer
// state), sharing their data.
func (c *Checkpoint) Params() []Tensor {
	var ps []Tensor
	for _, t := range c.Tensors {
		if !IsState(t.Name) {
			ps = append(ps, t)
		}
	}
	return ps
}

// Tensor returns the tensor of c called name, if any.
func (c *Checkpoint) Tensor(name string) (Tensor, bool) {
	for _, t := range c.Tensors {
		if t.Name == name {
			return t, true
		}
	}
	return Tensor{}, false
}

// Step returns the step number in c's metadata, if it holds a valid one.
func (c *Checkpoint) Step() (int64, bool) { return metaStep(c.Meta) }

func metaStep(meta map[string]string) (int64, bool) {
	s, ok := meta[MetaStep]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// TensorSpec is the name and shape of a tensor.
type TensorSpec struct {
	Name  string `json:"name"`
	Shape []int  `json:"shape"`
}

// Header is the part of a checkpoint's encoding before the tensor data: the
// metadata and the tensors' names and shapes, in canonical order.
type Header struct {
	Meta       map[string]string
	Tensors    []TensorSpec
	DataOffset int64 // where the first tensor's data starts in the encoding
	Size       int64 // the length of the whole encoding
}

// Encoding limits.
const (
	// MaxRank is the largest number of dimensions of a tensor.
	MaxRank = 8
	// encMagic starts every checkpoint encoding; its last byte is the
	// version.
	encMagic = "SHOALCK\x01"
	dtypeF32 = 1
)

// Encode writes the canonical encoding of c to w.
//
// The encoding, version 1, is (integers little endian):
//
//	magic    "SHOALCK" and the version byte 0x01
//	nmeta    uint32, then nmeta entries in strictly increasing byte order of key:
//	         key   uint32 length, UTF-8 bytes (not empty)
//	         value uint32 length, UTF-8 bytes
//	ntensor  uint32, then ntensor entries in strictly increasing byte order of name:
//	         name  uint32 length, UTF-8 bytes (not empty)
//	         dtype uint8, 1 for IEEE 754 binary32 (the only one defined)
//	         rank  uint8, at most MaxRank
//	         dims  rank × uint64
//	padding  zero bytes up to a multiple of 8 bytes from the start
//	data     each tensor's values in the same order, row-major, as binary32
//
// There is nothing after the data, and no field that could vary for the
// same state: the same Checkpoint always gives the same bytes. Values are
// kept bit for bit (negative zero and NaN payloads included).
func (c *Checkpoint) Encode(w io.Writer) error {
	e, err := newEncoder(c)
	if err != nil {
		return err
	}
	buf := make([]byte, min(e.size, 256<<10))
	for off := int64(0); off < e.size; {
		n := min(int64(len(buf)), e.size-off)
		e.fill(buf[:n], off)
		if _, err := w.Write(buf[:n]); err != nil {
			return err
		}
		off += n
	}
	return nil
}

// MarshalBinary returns the canonical encoding of c (see Encode).
func (c *Checkpoint) MarshalBinary() ([]byte, error) {
	e, err := newEncoder(c)
	if err != nil {
		return nil, err
	}
	b := make([]byte, e.size)
	e.fill(b, 0)
	return b, nil
}

// encoder produces any byte range of a checkpoint's encoding, so that
// chunks can be encoded and hashed in parallel.
type encoder struct {
	hdr  []byte   // everything before the data, padding included
	ts   []Tensor // sorted by name
	ends []int64  // ends[i]: offset just past tensor i's data
	size int64
}

func newEncoder(c *Checkpoint) (*encoder, error) {
	ts := slices.Clone(c.Tensors)
	slices.SortFunc(ts, func(a, b Tensor) int { return strings.Compare(a.Name, b.Name) })
	if int64(len(c.Meta)) > math.MaxUint32 || int64(len(ts)) > math.MaxUint32 {
		return nil, fmt.Errorf("checkpoint: too many entries")
	}
	hdr := []byte(encMagic)
	hdr = binary.LittleEndian.AppendUint32(hdr, uint32(len(c.Meta)))
	for _, k := range slices.Sorted(maps.Keys(c.Meta)) {
		v := c.Meta[k]
		if k == "" || !utf8.ValidString(k) {
			return nil, fmt.Errorf("checkpoint: metadata key %q is empty or not UTF-8", k)
		}
		if !utf8.ValidString(v) {
			return nil, fmt.Errorf("checkpoint: metadata %q: value is not UTF-8", k)
		}
		hdr = appendString(hdr, k)
		hdr = appendString(hdr, v)
	}
	hdr = binary.LittleEndian.AppendUint32(hdr, uint32(len(ts)))
	var data int64
	ends := make([]int64, len(ts))
	for i, t := range ts {
		if t.Name == "" || !utf8.ValidString(t.Name) {
			return nil, fmt.Errorf("checkpoint: tensor name %q is empty or not UTF-8", t.Name)
		}
		if i > 0 && ts[i-1].Name == t.Name {
			return nil, fmt.Errorf("checkpoint: duplicate tensor %q", t.Name)
		}
		if len(t.Shape) > MaxRank {
			return nil, fmt.Errorf("checkpoint: tensor %q: rank %d exceeds %d", t.Name, len(t.Shape), MaxRank)
		}
		n := 1
		for _, d := range t.Shape {
			if d < 0 {
				return nil, fmt.Errorf("checkpoint: tensor %q: negative dimension in shape %v", t.Name, t.Shape)
			}
			n *= d
		}
		if n != len(t.Data) {
			return nil, fmt.Errorf("checkpoint: tensor %q: shape %v does not match %d values", t.Name, t.Shape, len(t.Data))
		}
		hdr = appendString(hdr, t.Name)
		hdr = append(hdr, dtypeF32, byte(len(t.Shape)))
		for _, d := range t.Shape {
			hdr = binary.LittleEndian.AppendUint64(hdr, uint64(d))
		}
		data += 4 * int64(n)
		ends[i] = data
	}
	for len(hdr)%8 != 0 {
		hdr = append(hdr, 0)
	}
	if len(hdr) > MaxHeader {
		return nil, fmt.Errorf("checkpoint: header of %d bytes exceeds the %d-byte limit", len(hdr), MaxHeader)
	}
	for i := range ends {
		ends[i] += int64(len(hdr))
	}
	return &encoder{hdr: hdr, ts: ts, ends: ends, size: int64(len(hdr)) + data}, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// fill writes bytes [off, off+len(dst)) of the encoding into dst.
func (e *encoder) fill(dst []byte, off int64) {
	if off < int64(len(e.hdr)) {
		n := copy(dst, e.hdr[off:])
		dst, off = dst[n:], off+int64(n)
	}
	i := sort.Search(len(e.ends), func(i int) bool { return e.ends[i] > off })
	for len(dst) > 0 {
		vals := e.ts[i].Data
		k := int(off - (e.ends[i] - 4*int64(len(vals)))) // byte offset in the tensor's data
		if k%4 != 0 || len(dst) < 4 {
			// A value split across the range's edge.
			var b4 [4]byte
			binary.LittleEndian.PutUint32(b4[:], math.Float32bits(vals[k/4]))
			n := copy(dst, b4[k%4:])
			dst, off = dst[n:], off+int64(n)
		} else {
			n := min(len(dst)/4, len(vals)-k/4)
			putFloats(dst[:4*n], vals[k/4:k/4+n])
			dst, off = dst[4*n:], off+4*int64(n)
		}
		for i < len(e.ends) && e.ends[i] <= off {
			i++
		}
	}
}

// littleEndian reports whether float32s are stored in memory as the
// encoding stores them, so that they can be copied as bytes.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

func floatBytes(f []float32) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(f))), 4*len(f))
}

// putFloats writes src to dst as little-endian binary32.
func putFloats(dst []byte, src []float32) {
	dst = dst[:4*len(src)]
	if littleEndian {
		copy(dst, floatBytes(src))
		return
	}
	for i, v := range src {
		binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
	}
}

// getFloats reads dst from little-endian binary32 in src.
func getFloats(dst []float32, src []byte) {
	src = src[:4*len(dst)]
	if littleEndian {
		copy(floatBytes(dst), src)
		return
	}
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
}

func encErr(field, format string, args ...any) error {
	return &FormatError{Format: "checkpoint", Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Decode parses a checkpoint's canonical encoding. It accepts exactly the
// byte strings Encode produces: names in strictly increasing order, no
// duplicates, zero padding, a data section exactly as long as the shapes
// require and nothing after it. Malformed input gives a *FormatError that
// names the field; no allocation exceeds what the input's length allows.
func Decode(b []byte) (*Checkpoint, error) {
	h, err := DecodeHeader(b)
	if err != nil {
		return nil, err
	}
	if h.Size != int64(len(b)) {
		return nil, encErr("data", "shapes need %d bytes in all, input has %d", h.Size, len(b))
	}
	c := &Checkpoint{Meta: h.Meta, Tensors: make([]Tensor, len(h.Tensors))}
	off := h.DataOffset
	for i, s := range h.Tensors {
		n := 1
		for _, d := range s.Shape {
			n *= d
		}
		vals := make([]float32, n)
		getFloats(vals, b[off:])
		off += 4 * int64(n)
		c.Tensors[i] = Tensor{Name: s.Name, Shape: s.Shape, Data: vals}
	}
	return c, nil
}

// DecodeHeader parses the header of a checkpoint encoding from b, which
// may hold only a prefix of the encoding as long as it holds the whole
// header (Header.DataOffset bytes). It checks the header as Decode does.
func DecodeHeader(b []byte) (*Header, error) {
	h, err := decodeHeader(b)
	if err == errShort {
		if len(b) >= MaxHeader {
			return nil, encErr("header", "longer than the %d-byte limit", MaxHeader)
		}
		return nil, encErr("header", "truncated")
	}
	return h, err
}

// errShort reports that a prefix ends inside the header.
var errShort = encErr("header", "truncated")

type reader struct {
	b   []byte
	off int
}

func (r *reader) take(n int) ([]byte, bool) {
	if n < 0 || n > len(r.b)-r.off {
		return nil, false
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s, true
}

func (r *reader) u32() (uint32, bool) {
	s, ok := r.take(4)
	if !ok {
		return 0, false
	}
	return binary.LittleEndian.Uint32(s), true
}

func (r *reader) str() (string, bool) {
	n, ok := r.u32()
	if !ok || int64(n) > int64(len(r.b)-r.off) {
		return "", false
	}
	s, _ := r.take(int(n))
	return string(s), true
}

func decodeHeader(b []byte) (*Header, error) {
	if len(b) > MaxHeader {
		b = b[:MaxHeader]
	}
	r := &reader{b: b}
	magic, ok := r.take(len(encMagic))
	if !ok {
		if len(b) < len(encMagic) && string(b) == encMagic[:len(b)] {
			return nil, errShort
		}
		return nil, encErr("magic", "not a checkpoint encoding")
	}
	if string(magic[:7]) != encMagic[:7] {
		return nil, encErr("magic", "not a checkpoint encoding")
	}
	if magic[7] != encMagic[7] {
		return nil, encErr("version", "unsupported version %d", magic[7])
	}
	nmeta, ok := r.u32()
	if !ok {
		return nil, errShort
	}
	if nmeta > MaxHeader/9 {
		return nil, encErr("nmeta", "%d entries cannot fit in the %d-byte header limit", nmeta, MaxHeader)
	}
	// Capacities are bounded by what the input can hold (an entry takes
	// at least 9 bytes, a tensor 10), not by the counts it declares.
	h := &Header{Meta: make(map[string]string, min(int(nmeta), (len(b)-r.off)/9))}
	prev := ""
	for i := range int(nmeta) {
		k, ok := r.str()
		if !ok {
			return nil, errShort
		}
		field := fmt.Sprintf("meta[%d]", i)
		if k == "" || !utf8.ValidString(k) {
			return nil, encErr(field, "key %q is empty or not UTF-8", k)
		}
		if i > 0 && k <= prev {
			return nil, encErr(field, "key %q is out of order or repeated", k)
		}
		prev = k
		v, ok := r.str()
		if !ok {
			return nil, errShort
		}
		if !utf8.ValidString(v) {
			return nil, encErr("meta."+k, "value is not UTF-8")
		}
		h.Meta[k] = v
	}
	nt, ok := r.u32()
	if !ok {
		return nil, errShort
	}
	if nt > MaxHeader/10 {
		return nil, encErr("ntensor", "%d tensors cannot fit in the %d-byte header limit", nt, MaxHeader)
	}
	h.Tensors = make([]TensorSpec, 0, min(int(nt), (len(b)-r.off)/10))
	var data int64
	for i := range int(nt) {
		name, ok := r.str()
		if !ok {
			return nil, errShort
		}
		if name == "" || !utf8.ValidString(name) {
			return nil, encErr(fmt.Sprintf("tensors[%d]", i), "name %q is empty or not UTF-8", name)
		}
		if i > 0 && name <= prev {
			return nil, encErr(fmt.Sprintf("tensors[%d]", i), "name %q is out of order or repeated", name)
		}
		prev = name
		dr, ok := r.take(2)
		if !ok {
			return nil, errShort
		}
		if dr[0] != dtypeF32 {
			return nil, encErr(name+".dtype", "unknown dtype %d", dr[0])
		}
		rank := int(dr[1])
		if rank > MaxRank {
			return nil, encErr(name+".rank", "%d exceeds %d", rank, MaxRank)
		}
		dims, ok := r.take(8 * rank)
		if !ok {
			return nil, errShort
		}
		shape := make([]int, rank)
		n := int64(1)
		for j := range shape {
			d := binary.LittleEndian.Uint64(dims[8*j:])
			if d > math.MaxInt32 {
				return nil, encErr(name+".shape", "dimension %d is too large", d)
			}
			if d > 0 && n > (math.MaxInt64/2-data)/4/int64(d) {
				return nil, encErr(name+".shape", "too many values")
			}
			shape[j] = int(d)
			n *= int64(d)
		}
		data += 4 * n
		h.Tensors = append(h.Tensors, TensorSpec{Name: name, Shape: shape})
	}
	pad := (8 - r.off%8) % 8
	p, ok := r.take(pad)
	if !ok {
		return nil, errShort
	}
	for _, x := range p {
		if x != 0 {
			return nil, encErr("padding", "non-zero byte")
		}
	}
	h.DataOffset = int64(r.off)
	h.Size = h.DataOffset + data
	return h, nil
}
