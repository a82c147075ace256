// Package checkpoint stores model state: canonical encodings whose CIDs
// identify checkpoints, chunks and manifests that let a checkpoint be
// fetched piecewise from many peers, a content-addressed store on disk,
// atomic files, and import and export in the safetensors format that
// PyTorch and Hugging Face load.
//
// A Checkpoint is named float32 tensors (parameters, and the outer
// optimizer's state under StatePrefix) and string metadata. Its encoding
// (Checkpoint.Encode) is canonical: sorted names, binary32 little endian,
// no timestamps, so the same state always gives the same bytes. The
// encoding is cut into chunks of ChunkSize bytes, each identified by its
// CID (CIDv1, raw codec, sha2-256); a Manifest (package content's
// one chunk manifest) lists them, and the manifest's CID, formed the same way from its canonical bytes, is the
// checkpoint's ID. Build computes all of it; content.Verify and Assemble
// check what a peer sent.
//
// A Store keeps chunks and manifests as files named by CID, with labels,
// pins and garbage collection, and survives a writer killed at any point
// (see Store). ExportSafetensors and ImportSafetensors convert a
// checkpoint's parameters to and from the safetensors format under the
// names it already has (shoal's models use Hugging Face's).
//
// Contract: a write either leaves the complete new file in place or leaves
// the old state untouched (temporary file, fsync, rename, directory fsync);
// a reader rejects malformed input with an error that names the field and
// the problem, and never allocates more than the input's declared and
// verified sizes; content read from disk or a peer is checked against its
// CID before use (a mismatch wraps ErrCorrupt).
//
// The package knows nothing of models: it works on the names and shapes it
// is given.
package checkpoint
