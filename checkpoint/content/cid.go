package content

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// Sum returns the CID of data: CIDv1, raw codec (0x55), sha2-256.
func Sum(data []byte) cid.Cid { return OfDigest(sha256.Sum256(data)) }

// OfDigest returns the CID whose sha2-256 digest is d.
func OfDigest(d [sha256.Size]byte) cid.Cid {
	// The multihash by hand (code 0x12, length 32, digest): both varints
	// fit in one byte.
	mh := make([]byte, 2+sha256.Size)
	mh[0], mh[1] = multihash.SHA2_256, sha256.Size
	copy(mh[2:], d[:])
	return cid.NewCidV1(cid.Raw, mh)
}

// Check checks that c is a CID of the form the network uses for
// content: CIDv1, raw codec (0x55), sha2-256.
func Check(c cid.Cid) error {
	if !c.Defined() {
		return errors.New("undefined CID")
	}
	p := c.Prefix()
	if p.Version != 1 || p.Codec != cid.Raw || p.MhType != multihash.SHA2_256 || p.MhLength != 32 {
		return fmt.Errorf("CID %s is not CIDv1 raw sha2-256 (got version %d, codec %#x, hash %#x)", c, p.Version, p.Codec, p.MhType)
	}
	return nil
}
