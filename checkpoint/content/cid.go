package content

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// Errors wrapped by what this package and the stores built on it return.
var (
	// ErrNotFound reports an object missing from a store.
	ErrNotFound = errors.New("not found")
	// ErrCorrupt reports content that does not match its CID, or that
	// matches it but does not decode.
	ErrCorrupt = errors.New("content does not match its CID")
	// ErrUnsupported reports a CID that is not CIDv1, raw codec,
	// sha2-256: the only kind the network stores, serves or fetches.
	ErrUnsupported = errors.New("CID is not CIDv1/raw/sha2-256")
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

// Digest returns the sha2-256 digest that c commits to. An error wraps
// ErrUnsupported if c is not CIDv1, raw codec, sha2-256.
func Digest(c cid.Cid) ([sha256.Size]byte, error) {
	var d [sha256.Size]byte
	// The one form supported is 36 bytes: version 1, codec raw (0x55),
	// multihash sha2-256 (0x12) of 32 bytes (0x20), the digest. Every
	// message names CIDs, so this is read without decoding them.
	if k := c.KeyString(); len(k) == 4+sha256.Size && k[:4] == rawSHA256Prefix {
		copy(d[:], k[4:])
		return d, nil
	}
	if !c.Defined() {
		return d, unsupported("undefined CID")
	}
	p := c.Prefix()
	if p.Version != 1 || p.Codec != cid.Raw || p.MhType != multihash.SHA2_256 || p.MhLength != sha256.Size {
		return d, unsupported(fmt.Sprintf("CID %s is not CIDv1 raw sha2-256 (got version %d, codec %#x, hash %#x)", c, p.Version, p.Codec, p.MhType))
	}
	dec, err := multihash.Decode(c.Hash())
	if err != nil || len(dec.Digest) != sha256.Size {
		return d, unsupported(fmt.Sprintf("CID %s has a malformed multihash", c))
	}
	copy(d[:], dec.Digest)
	return d, nil
}

// rawSHA256Prefix starts the binary form of every supported CID.
const rawSHA256Prefix = "\x01\x55\x12\x20"

// unsupported is an error that says why a CID is not supported and
// matches ErrUnsupported.
type unsupported string

func (e unsupported) Error() string        { return string(e) }
func (e unsupported) Is(target error) bool { return target == ErrUnsupported }

// Check checks that c is a CID of the form the network uses for
// content: CIDv1, raw codec (0x55), sha2-256. An error wraps
// ErrUnsupported.
func Check(c cid.Cid) error {
	_, err := Digest(c)
	return err
}

// MismatchError reports bytes that do not hash to the CID they were
// supposed to have. It wraps ErrCorrupt.
type MismatchError struct {
	Want, Got cid.Cid
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("content hashes to %s, want %s", e.Got, e.Want)
}

// Unwrap makes a MismatchError match ErrCorrupt.
func (e *MismatchError) Unwrap() error { return ErrCorrupt }

// Verify returns nil if data hashes to c, a *MismatchError (which wraps
// ErrCorrupt) if it does not, and an error wrapping ErrUnsupported if c is
// not CIDv1, raw codec, sha2-256.
func Verify(c cid.Cid, data []byte) error {
	return VerifyDigest(c, sha256.Sum256(data))
}

// VerifyDigest is Verify for data already hashed: got is its sha2-256
// digest.
func VerifyDigest(c cid.Cid, got [sha256.Size]byte) error {
	want, err := Digest(c)
	if err != nil {
		return err
	}
	if got != want {
		return &MismatchError{Want: c, Got: OfDigest(got)}
	}
	return nil
}

// MaxObject is the largest content named by the hash of its own bytes.
// Larger content is cut into chunks of ChunkSize and named by the CID of
// their manifest (see ID), so that it can be fetched from many peers and
// checked a chunk at a time. The blob exchange moves objects of at most
// this size.
const MaxObject = 16 << 20

// ID returns the CID that names data: Sum(data) for at most MaxObject
// bytes, else the CID of the manifest of data's chunks of ChunkSize.
func ID(data []byte) cid.Cid {
	if len(data) <= MaxObject {
		return Sum(data)
	}
	m := &Manifest{Size: int64(len(data)), ChunkSize: ChunkSize, Chunks: make([]cid.Cid, NumChunks(int64(len(data)), ChunkSize))}
	for i := range m.Chunks {
		off := m.ChunkOffset(i)
		m.Chunks[i] = Sum(data[off : off+int64(m.ChunkLen(i))])
	}
	id, err := m.ID()
	if err != nil {
		panic("content: manifest of valid chunks: " + err.Error())
	}
	return id
}
