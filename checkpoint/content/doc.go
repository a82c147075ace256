// Package content is shoal's content addressing, in one place: the rule
// that names bytes by a CID (CIDv1, raw codec, sha2-256: Sum, Verify), the
// manifest that lists the chunks of large content (Manifest; its CID names
// the whole), and the interface of a store that holds only verified bytes
// (Store). Checkpoints, the blob exchange and the node all use these.
package content
