package content

import "github.com/ipfs/go-cid"

// Store holds content by CID: chunks, manifests and small objects. It
// hands out only bytes that match their CID, and is told about bytes only
// once they have been verified, so nothing is hashed twice on the way in.
// Implementations are safe for concurrent use.
type Store interface {
	// Has reports whether the store holds object c.
	Has(c cid.Cid) bool
	// Get returns object c, or an error wrapping ErrNotFound (or
	// ErrCorrupt for a damaged copy). Callers do not modify the slice.
	Get(c cid.Cid) ([]byte, error)
	// Put stores data, which the caller has verified hashes to c. The
	// store may keep data; callers do not modify it afterwards.
	Put(c cid.Cid, data []byte) error
	// PutManifest stores a manifest ahead of its chunks, which follow by
	// Put, and returns its CID: a fetch of large content writes the
	// manifest first and each chunk as it arrives, so a fetch cut short
	// resumes from the chunks already held. Get of that CID returns the
	// manifest's encoding.
	PutManifest(m *Manifest) (cid.Cid, error)
}
