package content

import "github.com/ipfs/go-cid"

// Store holds content by CID: chunks, manifests and small objects. It
// hands out only bytes that match their CID, and is told about bytes only
// once they have been verified, so nothing need be hashed twice on the way
// in.
// Implementations are safe for concurrent use.
type Store interface {
	// Has reports whether the store holds object c.
	Has(c cid.Cid) bool
	// Get returns object c, or an error wrapping ErrNotFound (or
	// ErrCorrupt for a damaged copy). Callers do not modify the slice.
	Get(c cid.Cid) ([]byte, error)
	// PutVerified stores data, which the caller has verified hashes to c,
	// so the store need not hash it again. The store may keep data;
	// callers do not modify it afterwards.
	PutVerified(c cid.Cid, data []byte) error
	// PutManifest stores a manifest and returns its CID; Get of that CID
	// returns the manifest's encoding. Its chunks may be put before or
	// after it: a fetch writes the manifest first and each chunk as it
	// arrives, so a fetch cut short resumes from the chunks already held.
	PutManifest(m *Manifest) (cid.Cid, error)
}
