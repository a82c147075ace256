package data

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"strings"
	"testing"
)

func TestCIDGolden(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"", "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"},
		{"hello shoal\n", "bafkreia2sbpknlj3ibwwdglinpxrsy7bc4xinezgmbwymbr7aigxnhirf4"},
	}
	for _, tt := range tests {
		c := CIDOf([]byte(tt.in))
		if got := c.String(); got != tt.want {
			t.Errorf("CIDOf(%q) = %s, want %s", tt.in, got, tt.want)
		}
		// The same identifier assembled by hand: multibase 'b' (base32,
		// lower case, no padding) of version 1, raw codec 0x55, sha2-256
		// (0x12) with a 32-byte digest.
		sum := sha256.Sum256([]byte(tt.in))
		raw := append([]byte{0x01, 0x55, 0x12, 0x20}, sum[:]...)
		manual := "b" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw))
		if manual != tt.want {
			t.Errorf("hand-built CID of %q = %s, want %s", tt.in, manual, tt.want)
		}
		if c.Version() != 1 || c.Type() != 0x55 || c.Prefix().MhType != 0x12 {
			t.Errorf("CIDOf(%q) prefix = %+v", tt.in, c.Prefix())
		}
	}
}

// checkShards verifies the invariants of MakeShards(data, n).
func checkShards(t *testing.T, data []byte, n int, shards []Shard) {
	t.Helper()
	if len(shards) != n {
		t.Fatalf("n=%d: got %d shards", n, len(shards))
	}
	var joined []byte
	for i, s := range shards {
		if s.Index != i {
			t.Errorf("n=%d: shard %d has Index %d", n, i, s.Index)
		}
		if len(s.Data) == 0 {
			t.Errorf("n=%d: shard %d is empty", n, i)
		}
		if cap(s.Data) != len(s.Data) {
			t.Errorf("n=%d: shard %d capacity %d exceeds length %d", n, i, cap(s.Data), len(s.Data))
		}
		if !s.CID.Equals(CIDOf(s.Data)) {
			t.Errorf("n=%d: shard %d CID %s is not CIDOf its data", n, i, s.CID)
		}
		joined = append(joined, s.Data...)
	}
	if !bytes.Equal(joined, data) {
		t.Errorf("n=%d: shards do not concatenate back to the input", n)
	}
}

func TestMakeShards(t *testing.T) {
	lines := []byte(strings.Repeat("line of text number x\n", 2000)) // 44000 bytes, lines of 22
	flat := bytes.Repeat([]byte("abcdefgh"), 5000)                   // no newlines
	sparse := append(bytes.Repeat([]byte("z"), 30000), '\n')         // one late newline
	sparse = append(sparse, bytes.Repeat([]byte("w"), 9999)...)
	tests := []struct {
		name string
		data []byte
		n    int
	}{
		{"lines 1", lines, 1},
		{"lines 2", lines, 2},
		{"lines 7", lines, 7},
		{"lines 64", lines, 64},
		{"lines many", lines, 3000},
		{"flat 3", flat, 3},
		{"flat 10", flat, 10},
		{"sparse 4", sparse, 4},
		{"exact", []byte("abcdef"), 6},
		{"newlines only", []byte("\n\n\n\n\n"), 5},
		{"tiny lines", []byte("a\nb\nc\nd\n"), 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shards, err := MakeShards(tt.data, tt.n)
			if err != nil {
				t.Fatal(err)
			}
			checkShards(t, tt.data, tt.n, shards)
			again, err := MakeShards(bytes.Clone(tt.data), tt.n)
			if err != nil {
				t.Fatal(err)
			}
			for i := range shards {
				if !shards[i].CID.Equals(again[i].CID) || len(shards[i].Data) != len(again[i].Data) {
					t.Fatalf("shard %d differs between runs", i)
				}
			}
		})
	}

	// Boundaries: with lines of 22 bytes every shard except the last ends
	// with '\n', and starts at the first line start at or after its
	// target offset.
	for _, n := range []int{2, 3, 5, 64} {
		shards, _ := MakeShards(lines, n)
		start := 0
		for i, s := range shards {
			if i > 0 {
				target := i * len(lines) / n
				want := (target + 21) / 22 * 22
				if start != want {
					t.Errorf("n=%d: shard %d starts at %d, want %d (target %d)", n, i, start, want, target)
				}
			}
			if i < n-1 && s.Data[len(s.Data)-1] != '\n' {
				t.Errorf("n=%d: shard %d does not end a line", n, i)
			}
			start += len(s.Data)
		}
	}
	// Without a newline in the window the cut is exact.
	shards, _ := MakeShards(flat, 4)
	for i, s := range shards {
		if len(s.Data) != len(flat)/4 {
			t.Errorf("flat: shard %d has %d bytes, want %d", i, len(s.Data), len(flat)/4)
		}
	}
	// A newline beyond the window is ignored: the targets of sparse/4 are
	// 10000, 20000 and 30000; only the last is within reach of the newline
	// at 30000 (line start 30001).
	shards, _ = MakeShards(sparse, 4)
	var starts []int
	off := 0
	for _, s := range shards {
		starts = append(starts, off)
		off += len(s.Data)
	}
	if fmt.Sprint(starts) != "[0 10000 20000 30001]" {
		t.Errorf("sparse: shard starts %v, want [0 10000 20000 30001]", starts)
	}
}

func TestMakeShardsGolden(t *testing.T) {
	data := []byte("alpha beta\ngamma delta\nepsilon zeta\neta theta\n")
	shards, err := MakeShards(data, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"alpha beta\ngamma delta\n", "epsilon zeta\n", "eta theta\n"}
	for i, s := range shards {
		if string(s.Data) != want[i] {
			t.Errorf("shard %d = %q, want %q", i, s.Data, want[i])
		}
	}
	if got := shards[1].CID.String(); got != "bafkreiengaq5ju6mslomhxakvna2xd7ud6d2v3zjlpaoozfdsegfjtw36a" {
		t.Errorf("shard 1 CID = %s", got)
	}
}

func TestMakeShardsErrors(t *testing.T) {
	tests := []struct {
		data []byte
		n    int
		want string
	}{
		{[]byte("abc"), 0, "data: shard count must be at least 1, got 0"},
		{[]byte("abc"), -2, "data: shard count must be at least 1, got -2"},
		{[]byte("abc"), 4, "data: 3 bytes of text is too small for 4 shards (each shard needs at least one byte)"},
		{nil, 1, "data: 0 bytes of text is too small for 1 shards (each shard needs at least one byte)"},
	}
	for _, tt := range tests {
		shards, err := MakeShards(tt.data, tt.n)
		if err == nil || err.Error() != tt.want || shards != nil {
			t.Errorf("MakeShards(%d bytes, %d) = %d shards, %v; want error %q", len(tt.data), tt.n, len(shards), err, tt.want)
		}
	}
}

func FuzzMakeShards(f *testing.F) {
	f.Add([]byte("a\nb\nc\n"), uint8(2))
	f.Add([]byte(""), uint8(0))
	f.Add([]byte("no newline at all"), uint8(63))
	f.Add([]byte("\n\n\n\n"), uint8(3))
	f.Add(bytes.Repeat([]byte("x\n"), 3000), uint8(9))
	f.Fuzz(func(t *testing.T, data []byte, nb uint8) {
		n := 1 + int(nb)%64
		shards, err := MakeShards(data, n)
		if err != nil {
			if len(data) >= n {
				t.Fatalf("MakeShards(%d bytes, %d): unexpected error %v", len(data), n, err)
			}
			if shards != nil {
				t.Fatalf("MakeShards returned shards with an error")
			}
			return
		}
		checkShards(t, data, n, shards)
	})
}
