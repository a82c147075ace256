// Package content is shoal's content addressing: the one rule that names
// bytes by a CID (CIDv1, raw codec, sha2-256).
package content
