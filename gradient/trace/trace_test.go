package trace

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"slices"
	"testing"

	"github.com/shoal-network/shoal/checkpoint/content"
)

func leaf(b byte) Leaf { return Leaf{b} }

func TestTraceRoundTrip(t *testing.T) {
	tr := Trace{leaf(1), leaf(2), leaf(3)}
	b := tr.Marshal()
	got, err := Unmarshal(b, 3)
	if err != nil || !slices.Equal(got, tr) {
		t.Fatalf("got %v, %v", got, err)
	}
	for _, c := range []struct {
		name   string
		b      []byte
		leaves int
	}{
		{"other count", b, 4},
		{"short", b[:len(b)-1], 3},
		{"long", append(bytes.Clone(b), 0), 3},
		{"bad magic", append([]byte("XXXX"), b[4:]...), 3},
		{"count lies", func() []byte { c := bytes.Clone(b); c[4] = 9; return c }(), 3},
		{"no leaves", b[:8], 0},
		{"too many", b, MaxLeaves + 1},
	} {
		if _, err := Unmarshal(c.b, c.leaves); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", c.name, err)
		}
	}
}

func TestDivergence(t *testing.T) {
	a := Trace{leaf(0), leaf(1), leaf(2), leaf(3)}
	for _, c := range []struct {
		name  string
		leaf0 Leaf
		ts    []Trace
		want  int
	}{
		{"agree", leaf(0), []Trace{a, slices.Clone(a)}, 4},
		{"one trace", leaf(0), []Trace{a}, 4},
		{"leaf 0 not the referee's", leaf(9), []Trace{a, a}, 0},
		{"differ at 2", leaf(0), []Trace{a, {leaf(0), leaf(1), leaf(7), leaf(3)}}, 2},
		{"differ from 1 on", leaf(0), []Trace{a, {leaf(0), leaf(8), leaf(7), leaf(6)}}, 1},
		{"third differs at 3", leaf(0), []Trace{a, a, {leaf(0), leaf(1), leaf(2), leaf(6)}}, 3},
	} {
		if got := Divergence(c.leaf0, c.ts); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
	if got := Liars(2, leaf(2), []Trace{a, {leaf(0), leaf(1), leaf(7), leaf(3)}}); !slices.Equal(got, []bool{false, true}) {
		t.Errorf("Liars: %v", got)
	}
}

func TestState(t *testing.T) {
	s := &State{Steps: 7, Params: [][]float32{{1, 2}, {3}}, M: [][]float32{{4, 5}, {6}}, V: [][]float32{{7, 8}, {-0.5}}}
	b := s.Marshal()
	if len(b) != s.Size() {
		t.Fatalf("%d bytes, Size says %d", len(b), s.Size())
	}
	var h Hasher
	if l := h.Leaf(s); l != Leaf(sha256.Sum256(b)) || !l.CID().Equals(content.Sum(b)) {
		t.Fatalf("the leaf is not the hash of the state's bytes")
	}
	got, err := UnmarshalState(b, []int{2, 1})
	if err != nil || got.Steps != 7 || !slices.Equal(got.V[1], s.V[1]) || !slices.Equal(got.Params[0], s.Params[0]) {
		t.Fatalf("got %+v, %v", got, err)
	}
	if _, err := UnmarshalState(b, []int{2, 2}); !errors.Is(err, ErrMalformed) {
		t.Errorf("another shape: %v", err)
	}
	// A state larger than the hasher's buffer hashes the same.
	big := &State{Params: [][]float32{make([]float32, 20000)}, M: [][]float32{make([]float32, 20000)}, V: [][]float32{make([]float32, 20000)}}
	big.Params[0][19999] = 1
	if h.Leaf(big) != Leaf(sha256.Sum256(big.Marshal())) {
		t.Errorf("a large state's leaf is not the hash of its bytes")
	}
}

// TestStatePortable: the conversion a big-endian machine does gives the
// bytes a little-endian one hashes.
func TestStatePortable(t *testing.T) {
	s := &State{Steps: 3, Params: [][]float32{make([]float32, 9000)}, M: [][]float32{{1.5}}, V: [][]float32{make([]float32, 20000)}}
	for i := range s.Params[0] {
		s.Params[0][i] = float32(i) / 7
	}
	var h Hasher
	want := h.Leaf(s)
	saved := littleEndian
	littleEndian = false
	defer func() { littleEndian = saved }()
	if got := (&Hasher{}).Leaf(s); got != want {
		t.Errorf("the portable conversion hashes to another leaf")
	}
	if !bytes.Equal(s.Marshal(), func() []byte { littleEndian = saved; return s.Marshal() }()) {
		t.Errorf("the portable conversion gives other bytes")
	}
}

// FuzzUnmarshal: the decoders refuse what is not a trace or a state of
// the asked form, and re-encode what they accept to the same bytes.
func FuzzUnmarshal(f *testing.F) {
	f.Add(Trace{leaf(1), leaf(2)}.Marshal(), 2)
	f.Add((&State{Steps: 1, Params: [][]float32{{1}}, M: [][]float32{{2}}, V: [][]float32{{3}}}).Marshal(), 1)
	f.Add([]byte("STR1"), 0)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		if tr, err := Unmarshal(b, n); err == nil && !bytes.Equal(tr.Marshal(), b) {
			t.Errorf("trace % x re-encodes to % x", b, tr.Marshal())
		}
		if n < 0 || n > 1<<10 {
			return
		}
		if s, err := UnmarshalState(b, []int{n, 1}); err == nil && !bytes.Equal(s.Marshal(), b) {
			t.Errorf("state % x re-encodes to % x", b, s.Marshal())
		}
	})
}
