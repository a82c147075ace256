package checkpoint

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/shoal-network/shoal/checkpoint/content"
)

// Tensor is a named float32 tensor as stored in a file.
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32
}

// NumValues returns the number of values of a tensor of shape.
func NumValues(shape []int) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= int64(d)
	}
	return n
}

// MaxHeader is the largest header accepted: a safetensors file's JSON
// header (the format's reference implementation uses the same bound) or
// the header of a checkpoint encoding.
const MaxHeader = 100 << 20

type stEntry struct {
	DType       string  `json:"dtype"`
	Shape       []int64 `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

// WriteSafetensors writes tensors in the safetensors format: an 8-byte
// little-endian header length, a JSON header (keys in sorted order, padded
// with spaces to a multiple of 8 bytes), then the little-endian float32
// data of each tensor in header order. The output is canonical: the same
// tensors and metadata always give the same bytes.
func WriteSafetensors(w io.Writer, tensors []Tensor, metadata map[string]string) error {
	sorted := slices.Clone(tensors)
	slices.SortFunc(sorted, func(a, b Tensor) int { return strings.Compare(a.Name, b.Name) })
	var hdr bytes.Buffer
	hdr.WriteByte('{')
	first := true
	key := func(k string) {
		if !first {
			hdr.WriteByte(',')
		}
		first = false
		b, _ := json.Marshal(k)
		hdr.Write(b)
		hdr.WriteByte(':')
	}
	if len(metadata) > 0 {
		key("__metadata__")
		b, err := json.Marshal(metadata) // encoding/json sorts map keys
		if err != nil {
			return err
		}
		hdr.Write(b)
	}
	var off int64
	for i, t := range sorted {
		if t.Name == "" || t.Name == "__metadata__" {
			return fmt.Errorf("safetensors: invalid tensor name %q", t.Name)
		}
		if i > 0 && sorted[i-1].Name == t.Name {
			return fmt.Errorf("safetensors: duplicate tensor name %q", t.Name)
		}
		n := int64(1)
		for _, d := range t.Shape {
			n *= int64(d)
		}
		if n != int64(len(t.Data)) {
			return fmt.Errorf("safetensors: tensor %q: shape %v does not match %d values", t.Name, t.Shape, len(t.Data))
		}
		shape := make([]int64, len(t.Shape))
		for j, d := range t.Shape {
			shape[j] = int64(d)
		}
		key(t.Name)
		b, _ := json.Marshal(stEntry{DType: "F32", Shape: shape, DataOffsets: []int64{off, off + 4*n}})
		hdr.Write(b)
		off += 4 * n
	}
	hdr.WriteByte('}')
	for hdr.Len()%8 != 0 {
		hdr.WriteByte(' ')
	}
	bw := bufio.NewWriter(w)
	var n8 [8]byte
	binary.LittleEndian.PutUint64(n8[:], uint64(hdr.Len()))
	bw.Write(n8[:])
	bw.Write(hdr.Bytes())
	var b4 [4]byte
	for _, t := range sorted {
		for _, v := range t.Data {
			binary.LittleEndian.PutUint32(b4[:], math.Float32bits(v))
			bw.Write(b4[:])
		}
	}
	return bw.Flush()
}

// FormatError describes malformed input: a safetensors file, a checkpoint
// encoding, a manifest or a store's index.
//
// Its Format is "safetensors", "checkpoint", "manifest" or "index".
type FormatError = content.FormatError

func formatErr(field, format string, args ...any) error {
	return &FormatError{Format: "safetensors", Field: field, Msg: fmt.Sprintf(format, args...)}
}

// ReadSafetensors parses a safetensors file of size bytes from r. F32, F16
// and BF16 tensors are supported; the half-precision ones are widened to
// float32, which is exact. It checks the header length, that the header is a
// JSON object of valid UTF-8 without duplicate keys, that every entry has
// a known dtype, a non-negative shape, and offsets that match its size,
// that the data regions tile the buffer exactly without holes or overlap,
// and that the file is exactly as long as the header says.
func ReadSafetensors(r io.Reader, size int64) ([]Tensor, map[string]string, error) {
	var n8 [8]byte
	if _, err := io.ReadFull(r, n8[:]); err != nil {
		return nil, nil, formatErr("header length", "file shorter than 8 bytes")
	}
	hlen := binary.LittleEndian.Uint64(n8[:])
	if hlen > MaxHeader {
		return nil, nil, formatErr("header length", "%d bytes exceeds the %d-byte limit", hlen, MaxHeader)
	}
	if int64(hlen) > size-8 {
		return nil, nil, formatErr("header length", "%d bytes but the file has only %d after the length", hlen, size-8)
	}
	hdr := make([]byte, hlen)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, nil, formatErr("header", "truncated: %v", err)
	}
	if !utf8.Valid(hdr) {
		return nil, nil, formatErr("header", "not valid UTF-8")
	}
	entries, meta, err := parseHeader(hdr)
	if err != nil {
		return nil, nil, err
	}
	dataLen := size - 8 - int64(hlen)
	// Check the regions tile [0, dataLen).
	order := slices.Clone(entries)
	slices.SortFunc(order, func(a, b namedEntry) int { return cmp.Compare(a.e.DataOffsets[0], b.e.DataOffsets[0]) })
	var pos int64
	for _, ne := range order {
		if ne.e.DataOffsets[0] != pos {
			return nil, nil, formatErr(ne.name+".data_offsets", "region starts at %d, expected %d (holes or overlap in the data)", ne.e.DataOffsets[0], pos)
		}
		pos = ne.e.DataOffsets[1]
	}
	if pos != dataLen {
		return nil, nil, formatErr("data", "header describes %d bytes of data, file has %d", pos, dataLen)
	}
	data := make([]byte, dataLen)
	if _, err := io.ReadFull(r, data); err != nil {
		return nil, nil, formatErr("data", "truncated: %v", err)
	}
	out := make([]Tensor, 0, len(entries))
	for _, ne := range entries {
		b := data[ne.e.DataOffsets[0]:ne.e.DataOffsets[1]]
		vals := make([]float32, len(b)/dtypeSize[ne.e.DType])
		for i := range vals {
			switch ne.e.DType {
			case "F16":
				vals[i] = F16ToF32(binary.LittleEndian.Uint16(b[2*i:]))
			case "BF16":
				vals[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16)
			default:
				vals[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
			}
		}
		shape := make([]int, len(ne.e.Shape))
		for i, d := range ne.e.Shape {
			shape[i] = int(d)
		}
		out = append(out, Tensor{Name: ne.name, Shape: shape, Data: vals})
	}
	slices.SortFunc(out, func(a, b Tensor) int { return strings.Compare(a.Name, b.Name) })
	return out, meta, nil
}

type namedEntry struct {
	name string
	e    stEntry
}

func parseHeader(hdr []byte) ([]namedEntry, map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(hdr))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, nil, formatErr("header", "not a JSON object")
	}
	seen := map[string]bool{}
	var entries []namedEntry
	var meta map[string]string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, formatErr("header", "invalid JSON: %v", err)
		}
		name, _ := tok.(string)
		if seen[name] {
			return nil, nil, formatErr(name, "duplicate key")
		}
		seen[name] = true
		if name == "__metadata__" {
			if err := dec.Decode(&meta); err != nil {
				return nil, nil, formatErr("__metadata__", "must map strings to strings: %v", err)
			}
			continue
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, formatErr(name, "invalid JSON: %v", err)
		}
		var e stEntry
		rd := json.NewDecoder(bytes.NewReader(raw))
		rd.DisallowUnknownFields()
		if err := rd.Decode(&e); err != nil {
			return nil, nil, formatErr(name, "invalid entry: %v", err)
		}
		if err := checkEntry(name, e); err != nil {
			return nil, nil, err
		}
		entries = append(entries, namedEntry{name, e})
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, formatErr("header", "invalid JSON: %v", err)
	}
	if rest := bytes.TrimRight(hdr[dec.InputOffset():], " "); len(rest) != 0 {
		return nil, nil, formatErr("header", "trailing bytes after the JSON object")
	}
	return entries, meta, nil
}

var errUnsupported = errors.New("unsupported")

func checkEntry(name string, e stEntry) error {
	if name == "" {
		return formatErr("header", "empty tensor name")
	}
	switch e.DType {
	case "F32", "F16", "BF16":
	case "":
		return formatErr(name+".dtype", "missing")
	case "F64", "I64", "I32", "I16", "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2", "U16", "U32", "U64":
		return formatErr(name+".dtype", "%s is %v here: shoal reads F32, F16 and BF16 tensors", e.DType, errUnsupported)
	default:
		return formatErr(name+".dtype", "unknown dtype %q", e.DType)
	}
	if e.Shape == nil {
		return formatErr(name+".shape", "missing")
	}
	n := int64(1)
	for _, d := range e.Shape {
		if d < 0 {
			return formatErr(name+".shape", "negative dimension %d", d)
		}
		if d > 0 && n > math.MaxInt64/4/d {
			return formatErr(name+".shape", "%v is too large", e.Shape)
		}
		n *= d
	}
	if len(e.DataOffsets) != 2 {
		return formatErr(name+".data_offsets", "must be [begin, end]")
	}
	b, en := e.DataOffsets[0], e.DataOffsets[1]
	if b < 0 || en < b {
		return formatErr(name+".data_offsets", "[%d, %d] is not a range", b, en)
	}
	if w := int64(dtypeSize[e.DType]); en-b != w*n {
		return formatErr(name+".data_offsets", "[%d, %d] holds %d bytes, shape %v of %s needs %d", b, en, en-b, e.Shape, e.DType, w*n)
	}
	return nil
}

// dtypeSize is the bytes per value of each dtype ReadSafetensors reads.
var dtypeSize = map[string]int{"F32": 4, "F16": 2, "BF16": 2}

// F16ToF32 widens an IEEE 754 binary16 value to binary32, exactly:
// subnormals become normal, infinities and NaNs (with their payload)
// stay what they are.
func F16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // infinity or NaN
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+127-15)<<23 | frac<<13)
	case frac == 0: // zero
		return math.Float32frombits(sign)
	}
	// Subnormal: shift the fraction up until its leading one is the
	// implicit bit.
	e := uint32(127 - 15 + 1)
	for frac&0x400 == 0 {
		frac <<= 1
		e--
	}
	return math.Float32frombits(sign | e<<23 | (frac&0x3ff)<<13)
}
