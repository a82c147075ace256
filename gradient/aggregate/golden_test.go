package aggregate

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"testing"
)

// splitmix is a self-contained generator, so the golden inputs do not
// depend on any library's random streams.
type splitmix uint64

func (s *splitmix) next() uint64 {
	*s += 0x9e3779b97f4a7c15
	z := uint64(*s)
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// value returns a float32 built exactly from integers: a signed 24-bit
// mantissa times a power of two in [2^-30, 2^-14].
func (s *splitmix) value() float32 {
	r := s.next()
	m := int32(r>>40) - 1<<23
	e := int(r>>32&15) + 14
	return float32(m) * float32(math.Ldexp(1, -e-16))
}

func goldenInput() (int, []Contribution) {
	const n, k = 10007, 11
	s := splitmix(42)
	cs := make([]Contribution, k)
	for i := range cs {
		x := make([]float32, n)
		for j := range x {
			x[j] = s.value()
		}
		cs[i] = Contribution{Peer: peerName(i), Weight: float64(1 + s.next()%4096), Dense: x}
		if i%3 == 1 {
			sp := &Sparse{Len: n}
			for j, v := range x {
				if s.next()%8 == 0 {
					sp.Index = append(sp.Index, uint32(j))
					sp.Value = append(sp.Value, v)
				}
			}
			cs[i].Dense, cs[i].Sparse = nil, sp
		}
	}
	return n, cs
}

// TestGolden pins the exact bits of every rule on a fixed input, so that a
// run on another architecture (or after a change to a kernel) shows any
// difference. The digests were recorded on linux/amd64; arm64 must match.
func TestGolden(t *testing.T) {
	want := map[string]string{
		"mean":                             "8f8b04bae509a15e",
		"median":                           "eb498f0daed228f0",
		"trimmed-mean:trim=0.2":            "95cded8e912d77da",
		"trimmed-mean:trim=0":              "65565ab8eb05c987",
		"norm-clip:max=median":             "10de146eb12e5066",
		"norm-clip:max=1.5":                "d74ac86ce431dffe",
		"norm-clip:max=median,screen=true": "660f5bf83cf9a009",
		"norm-clip:max=1.5,screen=true":    "109259d279a04a46",
		"centered-clip:tau=median,iters=3": "037b0bfbea463d88",
		"centered-clip:tau=1,iters=2":      "084c0d3bf6d83277",
	}
	n, cs := goldenInput()
	for _, rule := range testRules() {
		dst := make([]float32, n)
		rep, err := rule.Aggregate(dst, cs)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		var b [8]byte
		for _, v := range dst {
			binary.LittleEndian.PutUint32(b[:4], math.Float32bits(v))
			h.Write(b[:4])
		}
		for _, v := range append(rep.Norms, rep.Scales...) {
			binary.LittleEndian.PutUint64(b[:], math.Float64bits(v))
			h.Write(b[:])
		}
		binary.LittleEndian.PutUint64(b[:], math.Float64bits(rep.Bound))
		h.Write(b[:])
		got := hex.EncodeToString(h.Sum(nil))[:16]
		if got != want[rule.Name()] {
			t.Errorf("%s: digest %s, want %s", rule.Name(), got, want[rule.Name()])
		}
	}
}
