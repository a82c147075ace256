package checkpoint

import (
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
)

// DamageKind classifies what Verify found.
type DamageKind string

// Kinds of damage.
const (
	CorruptChunk    DamageKind = "corrupt chunk"    // a chunk file does not match its CID
	CorruptManifest DamageKind = "corrupt manifest" // a manifest file does not match its CID or does not decode
	MissingChunk    DamageKind = "missing chunk"    // a manifest lists a chunk the store lacks
	InvalidEncoding DamageKind = "invalid encoding" // the chunks are intact but do not form a valid checkpoint
)

// Damage is one problem Verify found.
type Damage struct {
	Kind       DamageKind
	ID         cid.Cid // the chunk or manifest at fault
	Checkpoint cid.Cid // the checkpoint concerned, if known
	Path       string
	Err        error
}

func (d Damage) String() string {
	s := fmt.Sprintf("%s %s", d.Kind, d.ID)
	if d.Checkpoint.Defined() && d.Checkpoint != d.ID {
		s += fmt.Sprintf(" of checkpoint %s", d.Checkpoint)
	}
	return s + fmt.Sprintf(" (%s): %v", d.Path, d.Err)
}

// Report is the result of Verify.
type Report struct {
	Checkpoints int   // manifests checked
	Chunks      int   // chunk files checked
	Bytes       int64 // bytes hashed
	Damaged     []Damage
}

// OK reports whether Verify found nothing wrong.
func (r *Report) OK() bool { return len(r.Damaged) == 0 }

// Verify re-hashes the checkpoints ids, or, with none given, every
// manifest and chunk file of the store, and reports every damaged or
// missing object. A download in progress shows as missing chunks.
func (s *Store) Verify(ids ...cid.Cid) (*Report, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := &Report{}
	all := len(ids) == 0
	if all {
		var err error
		if ids, err = s.ids("manifests"); err != nil {
			return nil, err
		}
	}
	chunkOK := map[cid.Cid]bool{}
	checkChunk := func(c cid.Cid, size int64, ckpt cid.Cid) bool {
		if ok, seen := chunkOK[c]; seen {
			return ok
		}
		path := s.chunkPath(c)
		b, err := readObject(path, c, size, MaxChunkSize)
		switch {
		case errors.Is(err, ErrNotFound):
			r.Damaged = append(r.Damaged, Damage{Kind: MissingChunk, ID: c, Checkpoint: ckpt, Path: path, Err: err})
			return false // not cached: another manifest may list it too
		case err != nil:
			r.Damaged = append(r.Damaged, Damage{Kind: CorruptChunk, ID: c, Checkpoint: ckpt, Path: path, Err: err})
		}
		r.Chunks++
		r.Bytes += int64(len(b))
		chunkOK[c] = err == nil
		return err == nil
	}
	for _, id := range ids {
		r.Checkpoints++
		path := s.manifestPath(id)
		m, err := s.manifest(id)
		if errors.Is(err, ErrNotFound) {
			if !all {
				return nil, fmt.Errorf("checkpoint %s: %w", id, ErrNotFound)
			}
			continue // removed since the directory was read
		}
		if err != nil {
			r.Damaged = append(r.Damaged, Damage{Kind: CorruptManifest, ID: id, Checkpoint: id, Path: path, Err: err})
			continue
		}
		ok := true
		for i, c := range m.Chunks {
			ok = checkChunk(c, int64(m.ChunkLen(i)), id) && ok
		}
		if ok {
			if _, err := s.header(id, m, false); err != nil {
				r.Damaged = append(r.Damaged, Damage{Kind: InvalidEncoding, ID: id, Checkpoint: id, Path: path, Err: err})
			}
		}
	}
	if all {
		chunks, err := s.ids("chunks")
		if err != nil {
			return nil, err
		}
		for _, c := range chunks {
			if _, seen := chunkOK[c]; !seen {
				checkChunk(c, -1, cid.Undef)
			}
		}
	}
	return r, nil
}
