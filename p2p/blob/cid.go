package blob

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// ErrUnsupportedCID is returned for a CID that is not CIDv1, raw codec,
// sha2-256: the only kind this package stores, serves or fetches.
var ErrUnsupportedCID = errors.New("blob: CID is not CIDv1/raw/sha2-256")

// Sum returns the CID of data: CIDv1, raw codec (0x55), sha2-256.
func Sum(data []byte) cid.Cid {
	return cidOfDigest(sha256.Sum256(data))
}

func cidOfDigest(d [sha256.Size]byte) cid.Cid {
	// Hand-encode the multihash (code 0x12, length 32, digest): both
	// varints fit in one byte.
	mh := make([]byte, 2+sha256.Size)
	mh[0], mh[1] = multihash.SHA2_256, sha256.Size
	copy(mh[2:], d[:])
	return cid.NewCidV1(cid.Raw, mh)
}

// digestOf returns the sha2-256 digest a supported CID commits to.
func digestOf(c cid.Cid) ([sha256.Size]byte, error) {
	var d [sha256.Size]byte
	if !c.Defined() || c.Version() != 1 || c.Type() != cid.Raw {
		return d, ErrUnsupportedCID
	}
	dec, err := multihash.Decode(c.Hash())
	if err != nil || dec.Code != multihash.SHA2_256 || len(dec.Digest) != sha256.Size {
		return d, ErrUnsupportedCID
	}
	copy(d[:], dec.Digest)
	return d, nil
}

// CheckCID reports whether c is a CID this package handles.
func CheckCID(c cid.Cid) error {
	_, err := digestOf(c)
	return err
}

// MismatchError reports bytes that do not hash to the CID they were
// supposed to have.
type MismatchError struct {
	Want, Got cid.Cid
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("blob: content hashes to %s, want %s", e.Got, e.Want)
}

// Verify returns nil if data hashes to c, a *MismatchError if it does not,
// and ErrUnsupportedCID if c is not a CIDv1/raw/sha2-256 CID.
func Verify(c cid.Cid, data []byte) error {
	want, err := digestOf(c)
	if err != nil {
		return err
	}
	got := sha256.Sum256(data)
	if got != want {
		return &MismatchError{Want: c, Got: cidOfDigest(got)}
	}
	return nil
}

// verifySum is Verify for a hash that has consumed the data.
func verifySum(c cid.Cid, h hash.Hash) error {
	want, err := digestOf(c)
	if err != nil {
		return err
	}
	var got [sha256.Size]byte
	h.Sum(got[:0])
	if got != want {
		return &MismatchError{Want: c, Got: cidOfDigest(got)}
	}
	return nil
}
