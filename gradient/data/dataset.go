package data

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
)

// A dataset is a text corpus cut for a round: training shards, each
// content-addressed, and a held-out tail for evaluation. Its manifest's
// CID names it in a round spec, so the text a round trains on is fixed by
// the round ID, and a volunteer can fetch the shards its units need from
// any peer, verified by CID.
//
// The cut depends only on the text: the last DatasetEvalFraction of it
// (at least DatasetMinEval bytes, at a line start when one is near) is
// held out, and the rest is cut into ⌈len/DatasetShardSize⌉ shards by
// MakeShards.

// Dataset parameters, fixed so that the same text always gives the same
// manifest.
const (
	DatasetShardSize    = 8 << 20 // target bytes per training shard
	DatasetEvalFraction = 0.02
	DatasetMinEval      = 16 << 10
	DatasetVersion      = 1
	// MaxDatasetShards bounds a manifest (8 TiB of text at the target size).
	MaxDatasetShards = 1 << 20
)

// ShardRef names one piece of a dataset.
type ShardRef struct {
	CID  cid.Cid `json:"cid"`
	Size int64   `json:"size"`
}

// DatasetManifest lists a dataset's shards.
type DatasetManifest struct {
	Version int        `json:"version"`
	Bytes   int64      `json:"bytes"`  // the whole text
	Shards  []ShardRef `json:"shards"` // training shards, in order
	Eval    ShardRef   `json:"eval"`   // the held-out text
}

// Dataset is a manifest with its content.
type Dataset struct {
	Manifest *DatasetManifest
	Shards   [][]byte
	Eval     []byte
}

// BuildDataset cuts text into a dataset.
func BuildDataset(text []byte) (*Dataset, error) {
	if len(text) < 2*DatasetMinEval {
		return nil, fmt.Errorf("data: %d bytes of text is too small for a dataset (at least %d)", len(text), 2*DatasetMinEval)
	}
	train, eval := splitTail(text, DatasetEvalFraction)
	if len(eval) < DatasetMinEval {
		cut := len(text) - DatasetMinEval
		if p := lineStart(text, cut, BoundaryWindow); p >= 0 && p < len(text)-1 {
			cut = p
		}
		train, eval = text[:cut:cut], text[cut:]
	}
	n := max(1, (len(train)+DatasetShardSize-1)/DatasetShardSize)
	shards, err := MakeShards(train, n)
	if err != nil {
		return nil, err
	}
	d := &Dataset{Manifest: &DatasetManifest{Version: DatasetVersion, Bytes: int64(len(text)),
		Eval: ShardRef{CID: CIDOf(eval), Size: int64(len(eval))}}, Eval: eval}
	for _, s := range shards {
		d.Manifest.Shards = append(d.Manifest.Shards, ShardRef{CID: s.CID, Size: int64(len(s.Data))})
		d.Shards = append(d.Shards, s.Data)
	}
	return d, nil
}

// Encode returns the manifest's canonical encoding: compact JSON with the
// fields in declaration order and CIDs as strings.
func (m *DatasetManifest) Encode() []byte {
	b, err := json.Marshal(m)
	if err != nil {
		panic("data: encoding a dataset manifest: " + err.Error())
	}
	return b
}

// ID returns the manifest's CID, the dataset's name in a round spec.
func (m *DatasetManifest) ID() cid.Cid { return CIDOf(m.Encode()) }

// ShardFor returns the training shard work unit unit of outer step step
// samples from, in a round of units units per step: the units take the
// shards in turn, step after step, so every shard is used.
func (m *DatasetManifest) ShardFor(step uint64, unit uint32, units int) ShardRef {
	i := (step*uint64(max(units, 1)) + uint64(unit)) % uint64(len(m.Shards))
	return m.Shards[i]
}

// DecodeDataset reads a manifest in canonical encoding and checks it.
func DecodeDataset(b []byte) (*DatasetManifest, error) {
	var m DatasetManifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("dataset manifest: %v", err)
	}
	switch {
	case m.Version != DatasetVersion:
		return nil, fmt.Errorf("dataset manifest: version %d, this build reads %d", m.Version, DatasetVersion)
	case len(m.Shards) == 0 || len(m.Shards) > MaxDatasetShards:
		return nil, fmt.Errorf("dataset manifest: %d shards, want 1 to %d", len(m.Shards), MaxDatasetShards)
	}
	total := m.Eval.Size
	for i, s := range append([]ShardRef{m.Eval}, m.Shards...) {
		if !s.CID.Defined() || s.Size <= 0 || s.Size > 1<<40 {
			return nil, fmt.Errorf("dataset manifest: piece %d: missing CID or bad size %d", i, s.Size)
		}
		if i > 0 {
			total += s.Size
		}
	}
	if total != m.Bytes {
		return nil, fmt.Errorf("dataset manifest: pieces add up to %d bytes, the manifest says %d", total, m.Bytes)
	}
	if !bytes.Equal(m.Encode(), b) {
		return nil, errors.New("dataset manifest: not in canonical form")
	}
	return &m, nil
}
