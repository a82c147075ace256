// Package blob stores and exchanges content-addressed blobs: checkpoints,
// dataset shards, oversized updates.
//
// A blob is stored as fixed-size chunks (DefaultChunkSize, 1 MiB) and a
// Manifest listing the chunks' CIDs; the blob's root CID is the CID of the
// manifest's canonical encoding, so the root commits to every chunk. All
// CIDs are CIDv1, raw codec (0x55), sha2-256.
//
// An Exchange serves the objects (manifests and chunks) of a Store over
// the stream protocol ProtocolID and fetches blobs from several providers
// at once. Every object fetched is verified against its CID before it is
// written to the Store; a provider that serves bad bytes or malformed
// responses is dropped from the fetch and reported. Serving and fetching
// are bounded by per-peer and global concurrency caps, size caps, and
// optional token-bucket bandwidth limits in each direction.
package blob
