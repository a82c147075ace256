package codec

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Version is the format version byte every encoding starts with.
const Version = 1

// Bounds on what an encoding may describe. Encode refuses inputs outside
// them and Decode rejects headers outside them.
const (
	MaxRank           = 8       // dimensions per tensor
	MaxNameLen        = 1024    // bytes per tensor name
	MaxTensorElements = 1 << 40 // elements per tensor
	MaxChunk          = 1 << 20 // int8 block, sign and topk chunk
	MaxDCTChunk       = 1024    // dct-topk chunk

	// Applied by Decode when the corresponding Limits field is zero.
	DefaultMaxTensors  = 1 << 12
	DefaultMaxElements = 1 << 24
)

// MaxValue bounds what Encode accepts: every element of delta+residual must
// be finite with magnitude below MaxValue (2^64).
const MaxValue float32 = 0x1p64

const (
	maxValueBits = 0x5f800000 // math.Float32bits(MaxValue)
	maxScaleBits = 0x67800000 // math.Float32bits(0x1p80): bound on decoded scale fields
	minNormBits  = 0x00800000 // math.Float32bits(0x1p-126): smallest normal float32
)

// Tensor is one named tensor of an update. Data holds the elements in
// row-major order; len(Data) equals the product of Shape (1 for a scalar,
// whose Shape is empty).
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32
}

// TensorSpec is the name and shape of a tensor a decoder expects.
type TensorSpec struct {
	Name  string
	Shape []int
}

// Limits bounds what Decode accepts. If Expect is non-nil the encoding
// must hold exactly those tensors, in that order, with those shapes. A
// zero MaxTensors or MaxElements means what Expect holds if it is set, and
// DefaultMaxTensors or DefaultMaxElements otherwise.
type Limits struct {
	MaxTensors  int // tensors in the update
	MaxElements int // elements summed over all tensors
	Expect      []TensorSpec
}

// Codec compresses updates. A Codec is immutable and safe for concurrent
// use.
type Codec interface {
	// Name is the codec's name: fp32, fp16, bf16, int8, topk, sign or
	// dct-topk.
	Name() string
	// String is the canonical spec, with every parameter spelled out;
	// Parse(c.String()) returns an equal codec.
	String() string
	// Encode encodes delta+residual (element by element, in float32) and,
	// if residual is non-nil, replaces every residual element by what was
	// not transmitted: (delta+residual) - decoded. residual is nil or holds
	// one slice per tensor, of the tensor's length; it must not alias
	// delta. On error nothing is written to residual.
	Encode(delta []Tensor, residual [][]float32) ([]byte, error)
	// Decode decodes an encoding made by this codec with these parameters.
	// Any malformed input yields a *FormatError. The returned tensors'
	// Data are consecutive slices of one allocation.
	Decode(b []byte, lim Limits) ([]Tensor, error)
}

// FormatError reports an encoding that Decode rejects: Field names the
// offending part (for example "params.k", "tensor[2].name",
// "tensor[0].index", "length").
type FormatError struct {
	Codec string
	Field string
	Msg   string
}

func (e *FormatError) Error() string {
	c := e.Codec
	if c == "" {
		c = "?"
	}
	return "codec " + c + ": " + e.Field + ": " + e.Msg
}

// Codec identifiers on the wire.
const (
	idFP32      = 1
	idFP16      = 2
	idBF16      = 3
	idInt8      = 4
	idTopK      = 5
	idSign      = 6
	idDCTTopK   = 7
	idBlockSign = 8
)

var codecNames = [...]string{
	idFP32:      "fp32",
	idFP16:      "fp16",
	idBF16:      "bf16",
	idInt8:      "int8",
	idTopK:      "topk",
	idSign:      "sign",
	idDCTTopK:   "dct-topk",
	idBlockSign: "block-sign",
}

// Value encodings of topk and dct-topk on the wire.
const (
	valFP16 = 1
	valInt8 = 2
	val2Bit = 3
)

var valueNames = [...]string{valFP16: "fp16", valInt8: "int8", val2Bit: "2bit"}

// codec implements every Codec; id selects the algorithm.
type codec struct {
	id     byte
	chunk  int  // int8 block; sign, block-sign, topk and dct-topk chunk
	k      int  // topk, dct-topk; block-sign: one chunk in every k is sent
	values byte // topk, dct-topk
	ibits  uint // bits per index: ceil(log2 chunk)
	basis  *dctBasis
}

// dctBasis is the chunk×chunk DCT-II matrix of a dct-topk codec, built on
// first use by Encode.
type dctBasis struct {
	once sync.Once
	m    []float32
}

func newCodec(id byte, chunk, k int, values byte) *codec {
	c := &codec{id: id, chunk: chunk, k: k, values: values}
	if id == idTopK || id == idDCTTopK {
		c.ibits = uint(bits.Len(uint(chunk - 1)))
	}
	if id == idDCTTopK {
		c.basis = new(dctBasis)
	}
	return c
}

func (c *codec) Name() string { return codecNames[c.id] }

func (c *codec) String() string {
	switch c.id {
	case idInt8:
		return "int8:block=" + strconv.Itoa(c.chunk)
	case idSign:
		return "sign:chunk=" + strconv.Itoa(c.chunk)
	case idBlockSign:
		return fmt.Sprintf("block-sign:chunk=%d,every=%d", c.chunk, c.k)
	case idTopK, idDCTTopK:
		return fmt.Sprintf("%s:chunk=%d,k=%d,values=%s", c.Name(), c.chunk, c.k, valueNames[c.values])
	}
	return c.Name()
}

// Parse returns the codec a spec names. A spec is a codec name, optionally
// followed by a colon and comma-separated key=value parameters:
//
//	fp32 | fp16 | bf16
//	int8[:block=B]                            B in [1, 2^20], default 256
//	sign[:chunk=C]                            C in [1, 2^20], default 256
//	topk[:chunk=C,k=K,values=V]               C in [2, 2^20], K in [1, C], V fp16|int8|2bit; default 4096, 64, fp16
//	dct-topk[:chunk=C,k=K,values=V]           C in [2, 1024], K in [1, C]; default 64, 8, fp16
//	block-sign[:chunk=C,every=D]              C in [1, 2^20], D in [1, 2^20]; default 256, 4
//
// Spaces around the name, keys and values are ignored; numbers are
// unsigned decimal integers. Parameters may come in any order; String
// writes them all, in the order above. Errors read "codec: " followed by
// what is wrong, for example
//
//	codec: unknown codec "gzip" (known: fp32, fp16, bf16, int8, sign, topk, dct-topk, block-sign)
//	codec: topk: k=9000 out of range [1, chunk=4096]
func Parse(spec string) (Codec, error) {
	name, args, hasArgs := strings.Cut(spec, ":")
	name = strings.TrimSpace(name)
	var (
		id     byte
		keys   []string
		chunk  int
		k      int
		values byte
	)
	switch name {
	case "fp32":
		id = idFP32
	case "fp16":
		id = idFP16
	case "bf16":
		id = idBF16
	case "int8":
		id, keys, chunk = idInt8, []string{"block"}, 256
	case "sign":
		id, keys, chunk = idSign, []string{"chunk"}, 256
	case "topk":
		id, keys, chunk, k, values = idTopK, []string{"chunk", "k", "values"}, 4096, 64, valFP16
	case "dct-topk":
		id, keys, chunk, k, values = idDCTTopK, []string{"chunk", "k", "values"}, 64, 8, valFP16
	case "block-sign":
		id, keys, chunk, k = idBlockSign, []string{"chunk", "every"}, 256, 4
	default:
		return nil, fmt.Errorf("codec: unknown codec %q (known: fp32, fp16, bf16, int8, sign, topk, dct-topk, block-sign)", name)
	}
	// The parameters are read in three passes, the syntax, then the keys,
	// then the values in canonical order, so that of several problems the
	// first of these is reported.
	vals := map[string]string{}
	var given []string // keys in spec order
	if hasArgs {
		for _, part := range strings.Split(args, ",") {
			key, val, ok := strings.Cut(part, "=")
			key, val = strings.TrimSpace(key), strings.TrimSpace(val)
			if !ok || key == "" || val == "" {
				return nil, fmt.Errorf("codec: %s: parameter %q is not key=value", name, part)
			}
			if _, dup := vals[key]; dup {
				return nil, fmt.Errorf("codec: %s: parameter %q given twice", name, key)
			}
			vals[key] = val
			given = append(given, key)
		}
	}
	for _, key := range given {
		if !slices.Contains(keys, key) {
			if len(keys) == 0 {
				return nil, fmt.Errorf("codec: %s takes no parameters, got %q", name, key)
			}
			return nil, fmt.Errorf("codec: %s: unknown parameter %q (known: %s)", name, key, strings.Join(keys, ", "))
		}
	}
	for _, key := range keys {
		val, ok := vals[key]
		if !ok || key == "values" {
			continue
		}
		n, err := strconv.ParseUint(val, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("codec: %s: %s=%q is not a decimal integer", name, key, val)
		}
		if key == "k" || key == "every" {
			k = int(n)
		} else {
			chunk = int(n)
		}
	}
	if f, msg := checkParams(id, chunk, k, values); msg != "" {
		return nil, fmt.Errorf("codec: %s: %s=%s", name, f, msg)
	}
	if val, ok := vals["values"]; ok {
		switch val {
		case "fp16":
			values = valFP16
		case "int8":
			values = valInt8
		case "2bit":
			values = val2Bit
		default:
			return nil, fmt.Errorf("codec: %s: values=%q: want fp16, int8 or 2bit", name, val)
		}
	}
	return newCodec(id, chunk, k, values), nil
}

// checkParams validates codec parameters; it returns the offending
// parameter and a message, or "" if they are valid.
func checkParams(id byte, chunk, k int, values byte) (field, msg string) {
	switch id {
	case idInt8:
		if chunk < 1 || chunk > MaxChunk {
			return "block", fmt.Sprintf("%d out of range [1, %d]", chunk, MaxChunk)
		}
	case idSign:
		if chunk < 1 || chunk > MaxChunk {
			return "chunk", fmt.Sprintf("%d out of range [1, %d]", chunk, MaxChunk)
		}
	case idBlockSign:
		if chunk < 1 || chunk > MaxChunk {
			return "chunk", fmt.Sprintf("%d out of range [1, %d]", chunk, MaxChunk)
		}
		if k < 1 || k > MaxChunk {
			return "every", fmt.Sprintf("%d out of range [1, %d]", k, MaxChunk)
		}
	case idTopK, idDCTTopK:
		hi := MaxChunk
		if id == idDCTTopK {
			hi = MaxDCTChunk
		}
		if chunk < 2 || chunk > hi {
			return "chunk", fmt.Sprintf("%d out of range [2, %d]", chunk, hi)
		}
		if k < 1 || k > chunk {
			return "k", fmt.Sprintf("%d out of range [1, chunk=%d]", k, chunk)
		}
		if values < valFP16 || values > val2Bit {
			return "values", fmt.Sprintf("unknown value encoding %d", values)
		}
	}
	return "", ""
}

// paramsLen is the number of parameter bytes after the codec ID.
func (c *codec) paramsLen() int {
	switch c.id {
	case idInt8, idSign:
		return 4
	case idTopK, idDCTTopK:
		return 9
	case idBlockSign:
		return 8
	}
	return 0
}

func (c *codec) putParams(b []byte) {
	switch c.id {
	case idInt8, idSign:
		binary.LittleEndian.PutUint32(b, uint32(c.chunk))
	case idTopK, idDCTTopK:
		binary.LittleEndian.PutUint32(b, uint32(c.chunk))
		binary.LittleEndian.PutUint32(b[4:], uint32(c.k))
		b[8] = c.values
	case idBlockSign:
		binary.LittleEndian.PutUint32(b, uint32(c.chunk))
		binary.LittleEndian.PutUint32(b[4:], uint32(c.k))
	}
}

// Inspect reads the version, codec ID and parameters at the start of an
// encoding and returns the codec that made it.
func Inspect(b []byte) (Codec, error) {
	c, _, err := readPrefix(b)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// readPrefix parses the version, codec ID and parameters; it returns the
// codec and the number of bytes read.
func readPrefix(b []byte) (*codec, int, error) {
	if len(b) < 2 {
		return nil, 0, &FormatError{"", "version", "truncated"}
	}
	if b[0] != Version {
		return nil, 0, &FormatError{"", "version", fmt.Sprintf("unsupported format version %d", b[0])}
	}
	id := b[1]
	if id < idFP32 || id > idBlockSign {
		return nil, 0, &FormatError{"", "codec", fmt.Sprintf("unknown codec ID %d", id)}
	}
	name := codecNames[id]
	var chunk, k int
	var values byte
	n := 2
	switch id {
	case idInt8, idSign:
		if len(b) < n+4 {
			return nil, 0, &FormatError{name, "params", "truncated"}
		}
		chunk = int(binary.LittleEndian.Uint32(b[n:]))
		n += 4
	case idTopK, idDCTTopK:
		if len(b) < n+9 {
			return nil, 0, &FormatError{name, "params", "truncated"}
		}
		chunk = int(binary.LittleEndian.Uint32(b[n:]))
		k = int(binary.LittleEndian.Uint32(b[n+4:]))
		values = b[n+8]
		n += 9
	case idBlockSign:
		if len(b) < n+8 {
			return nil, 0, &FormatError{name, "params", "truncated"}
		}
		chunk = int(binary.LittleEndian.Uint32(b[n:]))
		k = int(binary.LittleEndian.Uint32(b[n+4:]))
		n += 8
	}
	if f, msg := checkParams(id, chunk, k, values); msg != "" {
		if f == "block" {
			f = "chunk"
		}
		return nil, 0, &FormatError{name, "params." + f, msg}
	}
	return newCodec(id, chunk, k, values), n, nil
}

// checkName reports what is wrong with a tensor name, or "".
func checkName(name, prev string, i int) string {
	switch {
	case name == "":
		return "empty name"
	case len(name) > MaxNameLen:
		return fmt.Sprintf("name of %d bytes exceeds %d", len(name), MaxNameLen)
	case !utf8.ValidString(name):
		return "name is not valid UTF-8"
	case i > 0 && name <= prev:
		return fmt.Sprintf("name %q does not sort after %q", name, prev)
	}
	return ""
}

// Encode implements Codec.
func (c *codec) Encode(delta []Tensor, residual [][]float32) ([]byte, error) {
	if err := c.checkInput(delta, residual); err != nil {
		return nil, err
	}
	size := 2 + c.paramsLen() + 4
	for _, t := range delta {
		size += c.tensorLen(t.Name, t.Shape, len(t.Data))
	}
	b := make([]byte, size)
	b[0] = Version
	b[1] = c.id
	c.putParams(b[2:])
	off := 2 + c.paramsLen()
	binary.LittleEndian.PutUint32(b[off:], uint32(len(delta)))
	off += 4
	for _, t := range delta {
		binary.LittleEndian.PutUint16(b[off:], uint16(len(t.Name)))
		off += 2
		off += copy(b[off:], t.Name)
		b[off] = byte(len(t.Shape))
		off++
		for _, d := range t.Shape {
			binary.LittleEndian.PutUint32(b[off:], uint32(d))
			off += 4
		}
	}
	maxN := 0
	for _, t := range delta {
		maxN = max(maxN, len(t.Data))
	}
	e := c.newEncoder(maxN)
	for i, t := range delta {
		var r []float32
		if residual != nil {
			r = residual[i]
		}
		n := c.bodyLen(len(t.Data))
		c.encodeBody(e, b[off:off+n], t.Data, r)
		off += n
	}
	return b, nil
}

// tensorLen is the number of bytes of one tensor's entry: its name,
// shape and body.
func (c *codec) tensorLen(name string, shape []int, n int) int {
	return 2 + len(name) + 1 + 4*len(shape) + c.bodyLen(n)
}

// EncodedLen returns the exact length of c's encoding of any update of
// tensors with these names and shapes, without encoding one (every codec's
// length depends on the shapes alone), for sizing transfers and storage
// ahead of a round.
func EncodedLen(c Codec, tensors []TensorSpec) (int64, error) {
	cc, ok := c.(*codec)
	if !ok {
		return 0, fmt.Errorf("codec: EncodedLen of a %T, not a codec of this package", c)
	}
	size := int64(2 + cc.paramsLen() + 4)
	for _, t := range tensors {
		n := 1
		for _, d := range t.Shape {
			if d < 0 || (d > 0 && n > MaxTensorElements/d) {
				return 0, fmt.Errorf("codec: EncodedLen: tensor %q has shape %v", t.Name, t.Shape)
			}
			n *= d
		}
		size += int64(cc.tensorLen(t.Name, t.Shape, n))
	}
	return size, nil
}

// checkInput validates the tensors and the residual before Encode writes
// anything.
func (c *codec) checkInput(delta []Tensor, residual [][]float32) error {
	name := c.Name()
	if uint64(len(delta)) > math.MaxUint32 {
		return fmt.Errorf("codec %s: %d tensors", name, len(delta))
	}
	if residual != nil && len(residual) != len(delta) {
		return fmt.Errorf("codec %s: residual holds %d tensors, delta %d", name, len(residual), len(delta))
	}
	for i, t := range delta {
		prev := ""
		if i > 0 {
			prev = delta[i-1].Name
		}
		if msg := checkName(t.Name, prev, i); msg != "" {
			return fmt.Errorf("codec %s: tensor %d: %s", name, i, msg)
		}
		if len(t.Shape) > MaxRank {
			return fmt.Errorf("codec %s: tensor %q: rank %d exceeds %d", name, t.Name, len(t.Shape), MaxRank)
		}
		n := 1
		for _, d := range t.Shape {
			if d < 0 || uint64(d) > math.MaxUint32 {
				return fmt.Errorf("codec %s: tensor %q: dimension %d out of range", name, t.Name, d)
			}
			if d != 0 && n > MaxTensorElements/d {
				return fmt.Errorf("codec %s: tensor %q: more than %d elements", name, t.Name, MaxTensorElements)
			}
			n *= d
		}
		if n != len(t.Data) {
			return fmt.Errorf("codec %s: tensor %q: shape %v holds %d elements, data %d", name, t.Name, t.Shape, n, len(t.Data))
		}
		var r []float32
		if residual != nil {
			r = residual[i]
			if len(r) != n {
				return fmt.Errorf("codec %s: tensor %q: residual holds %d elements, data %d", name, t.Name, len(r), n)
			}
		}
		if j := firstOutOfRange(t.Data, r); j >= 0 {
			return fmt.Errorf("codec %s: tensor %q: element %d of delta+residual is not finite or has magnitude >= 2^64", name, t.Name, j)
		}
	}
	return nil
}

// firstOutOfRange returns the index of the first element of d+r (or of d
// if r is nil) that is NaN, infinite or of magnitude at least MaxValue, or
// -1.
func firstOutOfRange(d, r []float32) int {
	if r == nil {
		for j, v := range d {
			if math.Float32bits(v)&0x7fffffff >= maxValueBits {
				return j
			}
		}
		return -1
	}
	r = r[:len(d)]
	for j, v := range d {
		if math.Float32bits(v+r[j])&0x7fffffff >= maxValueBits {
			return j
		}
	}
	return -1
}

// bodyLen is the exact number of body bytes of a tensor of n elements.
func (c *codec) bodyLen(n int) int {
	switch c.id {
	case idFP32:
		return 4 * n
	case idFP16, idBF16:
		return 2 * n
	case idInt8:
		return n + 4*((n+c.chunk-1)/c.chunk)
	case idSign:
		full, rem := n/c.chunk, n%c.chunk
		l := full * (4 + (c.chunk+7)/8)
		if rem > 0 {
			l += 4 + (rem+7)/8
		}
		return l
	case idBlockSign:
		return c.blockSignLen(n)
	default: // idTopK, idDCTTopK
		full, rem := n/c.chunk, n%c.chunk
		l := full * c.recordLen(min(c.k, c.chunk))
		if rem > 0 {
			l += c.recordLen(min(c.k, rem))
		}
		return l
	}
}

func (c *codec) encodeBody(e *encoder, dst []byte, d, r []float32) {
	switch c.id {
	case idFP32:
		encodeFP32(dst, d, r)
	case idFP16:
		encodeFP16(dst, d, r)
	case idBF16:
		encodeBF16(dst, d, r)
	case idInt8:
		c.encodeInt8(dst, d, r)
	case idSign:
		c.encodeSign(e, dst, d, r)
	case idTopK:
		c.encodeTopK(e, dst, d, r)
	case idDCTTopK:
		c.encodeDCT(e, dst, d, r)
	case idBlockSign:
		c.encodeBlockSign(e, dst, d, r)
	}
}

// decodeBody decodes one tensor's body into out; it returns the offending
// field and a message, or "" on success.
func (c *codec) decodeBody(d *decoder, src []byte, out []float32) (field, msg string) {
	switch c.id {
	case idFP32:
		return decodeFP32(src, out)
	case idFP16:
		return decodeFP16(src, out)
	case idBF16:
		return decodeBF16(src, out)
	case idInt8:
		return c.decodeInt8(src, out)
	case idSign:
		return c.decodeSign(src, out)
	case idTopK:
		return c.decodeTopK(d, src, out)
	case idBlockSign:
		return c.decodeBlockSign(d, src, out)
	default:
		return c.decodeDCT(d, src, out)
	}
}

// DecayResidual weakens error feedback: it multiplies every residual
// element by keep = 1 − decay (both float32, each product rounded once),
// as a worker does before each encoding when its round sets a feedback
// decay. decay 0 leaves the residual as it is and 1 clears it to +0 (as
// a fresh residual is, where 0·v would leave -0 for a negative v).
func DecayResidual(residual [][]float32, decay float32) {
	if decay == 0 {
		return
	}
	keep := 1 - decay
	for _, r := range residual {
		if keep == 0 {
			clear(r)
			continue
		}
		for j, v := range r {
			r[j] = keep * v
		}
	}
}
