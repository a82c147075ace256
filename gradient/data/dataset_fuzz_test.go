package data

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzDecodeDataset: a hostile manifest never panics the decoder, and one
// it accepts re-encodes to the same bytes.
func FuzzDecodeDataset(f *testing.F) {
	d, err := BuildDataset([]byte(strings.Repeat("some text\n", 8000)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(d.Manifest.Encode())
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeDataset(b)
		if err != nil {
			return
		}
		if !bytes.Equal(m.Encode(), b) {
			t.Fatal("accepted a manifest that re-encodes differently")
		}
	})
}
