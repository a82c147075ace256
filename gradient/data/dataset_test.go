package data

import (
	"bytes"
	"strings"
	"testing"
)

func TestDataset(t *testing.T) {
	var b strings.Builder
	for i := 0; b.Len() < 20<<20; i++ {
		b.WriteString("line ")
		b.WriteString(strings.Repeat("x", i%97))
		b.WriteString("\n")
	}
	text := []byte(b.String())
	d, err := BuildDataset(text)
	if err != nil {
		t.Fatal(err)
	}
	m := d.Manifest
	if len(m.Shards) != 3 {
		t.Fatalf("%d shards of %d bytes, want 3", len(m.Shards), len(text))
	}
	joined := bytes.Join(append(d.Shards, d.Eval), nil)
	if !bytes.Equal(joined, text) {
		t.Fatal("shards and held-out text do not make up the text")
	}
	if got := float64(len(d.Eval)) / float64(len(text)); got < 0.019 || got > 0.021 {
		t.Errorf("held out %.3f of the text", got)
	}
	for i, s := range m.Shards {
		if !s.CID.Equals(CIDOf(d.Shards[i])) || s.Size != int64(len(d.Shards[i])) {
			t.Errorf("shard %d: ref %v does not match its content", i, s)
		}
	}
	again, _ := BuildDataset(bytes.Clone(text))
	if !again.Manifest.ID().Equals(m.ID()) {
		t.Fatal("the same text gave another manifest")
	}
	dec, err := DecodeDataset(m.Encode())
	if err != nil || !dec.ID().Equals(m.ID()) {
		t.Fatalf("round trip: %v", err)
	}
	for name, bad := range map[string]string{
		"not canonical": " " + string(m.Encode()),
		"unknown field": strings.Replace(string(m.Encode()), `"version":1`, `"version":1,"x":2`, 1),
		"bad version":   strings.Replace(string(m.Encode()), `"version":1`, `"version":2`, 1),
		"bad total":     strings.Replace(string(m.Encode()), `"bytes":`, `"bytes":1`, 1),
		"garbage":       "{]",
	} {
		if _, err := DecodeDataset([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := BuildDataset([]byte("tiny")); err == nil {
		t.Error("a tiny text made a dataset")
	}
	if m.ShardFor(0, 4, 5) != m.Shards[1] || m.ShardFor(1, 0, 5) != m.Shards[2] {
		t.Error("units do not take the shards in turn")
	}
}
