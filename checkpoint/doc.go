// Package checkpoint stores model state: canonical encodings whose CIDs
// identify checkpoints, atomic files, and import and export in the
// safetensors format that PyTorch and Hugging Face load.
//
// Contract: a write either leaves the complete new file in place or leaves
// the old state untouched (temporary file, fsync, rename, directory fsync);
// a reader rejects malformed input with an error that names the field and
// the problem, and never allocates more than the input's declared and
// verified sizes.
package checkpoint
