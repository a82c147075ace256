// Package blob stores and exchanges content-addressed blobs: checkpoints,
// dataset shards, oversized updates.
//
// Large content travels as chunks and the one chunk manifest of package
// content (content.Manifest, the format of checkpoints): the blob's root
// CID is the manifest's CID, so it commits to every chunk, and a
// checkpoint's ID is its root. All CIDs are CIDv1, raw codec (0x55),
// sha2-256 (content.Sum); small content is a single object fetched by its
// CID.
//
// An Exchange serves the objects (manifests and chunks) of a
// content.Store over the stream protocol ProtocolID and fetches blobs
// from several providers at once, into its own store or any other
// (FetchInto: a checkpoint store on disk). Every object fetched is hashed
// once, as it arrives, and verified against its CID before it is written
// to the store; the manifest is written first, so a fetch cut short
// resumes from the chunks already there. A provider that serves bad bytes
// or malformed responses is dropped from the fetch and reported. Serving
// and fetching are bounded by per-peer and global concurrency caps, size
// caps, and optional token-bucket bandwidth limits in each direction; a
// fetch holds at most Options.FetchMemory bytes of chunks at once, however
// large the blob. A peer serves every chunk it holds, so one half way
// through a fetch already serves what it has to others.
package blob
