package data

import (
	"fmt"
	"math/bits"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/checkpoint/content"
)

// Shard is one contiguous piece of a corpus.
type Shard struct {
	// Index is the shard's position, 0 to n-1.
	Index int
	// Data aliases the input of MakeShards (capacity limited to its length).
	Data []byte
	// CID is CIDOf(Data).
	CID cid.Cid
}

// CIDOf returns the content identifier of b: content.Sum, the network's
// one CID rule (CIDv1, raw codec, sha2-256).
func CIDOf(b []byte) cid.Cid { return content.Sum(b) }

// MakeShards cuts data into n contiguous, non-empty shards that concatenate
// back to data. The boundary before shard i (0 < i < n) aims at
// t = floor(i*len(data)/n): it is the first line start (a position just
// after '\n') at or after max(t, previous boundary+1), if one lies within
// BoundaryWindow bytes, and that position otherwise; it is then pulled back
// if needed so that every later shard still gets at least one byte. The
// result depends only on data and n. It is an error if n < 1 or data has
// fewer than n bytes.
func MakeShards(data []byte, n int) ([]Shard, error) {
	if n < 1 {
		return nil, fmt.Errorf("data: shard count must be at least 1, got %d", n)
	}
	if len(data) < n {
		return nil, fmt.Errorf("data: %d bytes of text is too small for %d shards (each shard needs at least one byte)", len(data), n)
	}
	shards := make([]Shard, n)
	start := 0
	for i := range n {
		end := len(data)
		if i < n-1 {
			end = shardBoundary(data, i+1, n, start)
		}
		b := data[start:end:end]
		shards[i] = Shard{Index: i, Data: b, CID: CIDOf(b)}
		start = end
	}
	return shards, nil
}

// shardBoundary returns the start of shard i of n, given that shard i-1
// starts at prev.
func shardBoundary(data []byte, i, n, prev int) int {
	hi, lo := bits.Mul64(uint64(i), uint64(len(data)))
	t, _ := bits.Div64(hi, lo, uint64(n)) // hi < n because i < n
	from := max(int(t), prev+1)
	b := from
	if p := lineStart(data, from, BoundaryWindow); p >= 0 {
		b = p
	}
	// Leave one byte for each of the shards i..n-1.
	return min(b, len(data)-(n-i))
}
