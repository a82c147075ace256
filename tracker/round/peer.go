package round

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// libp2pKey is the multicodec of a peer ID written as a CID.
const libp2pKey = 0x72

// maxInlineKey is the longest public key libp2p inlines in a peer ID with
// the identity hash; longer keys are hashed with sha2-256.
const maxInlineKey = 42

// MaxPeerIDLen bounds the text of a peer ID (a sha2-256 peer ID is 46
// characters in base58btc, an inlined key at most 61 and the CID forms a
// little more), so decoding stays cheap on hostile input.
const MaxPeerIDLen = 128

// CanonicalPeerID checks that s is a syntactically valid libp2p peer ID and
// returns it in the canonical text form, base58btc of the multihash (as in
// "12D3KooW…" or "Qm…"). Two forms are accepted:
//
//   - the base58btc multihash ("12D3KooW…", "Qm…"), libp2p's usual form;
//   - a CIDv1 with the libp2p-key codec (0x72) in any multibase the go-cid
//     package reads ("bafzaa…", "k51qzi5uqu5…").
//
// The multihash must be either the identity hash of an inlined public key
// of 1 to 42 bytes or a sha2-256 digest of 32 bytes. The check is syntactic
// only: it does not decode the public key.
func CanonicalPeerID(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty peer ID")
	}
	if len(s) > MaxPeerIDLen {
		return "", fmt.Errorf("peer ID of %d characters is too long", len(s))
	}
	h, err := mh.FromB58String(s)
	if err != nil {
		c, cerr := cid.Decode(s)
		if cerr != nil {
			return "", fmt.Errorf("%q is not a peer ID (neither a base58btc multihash nor a libp2p-key CID)", s)
		}
		if c.Version() != 1 || c.Type() != libp2pKey {
			return "", fmt.Errorf("%q is a CID but not a peer ID: want CIDv1 with the libp2p-key codec (0x72), got version %d codec %#x", s, c.Version(), c.Type())
		}
		h = c.Hash()
	}
	d, err := mh.Decode(h)
	if err != nil {
		return "", fmt.Errorf("%q is not a peer ID: %v", s, err)
	}
	switch {
	case d.Code == mh.IDENTITY && d.Length >= 1 && d.Length <= maxInlineKey:
	case d.Code == mh.SHA2_256 && d.Length == 32:
	default:
		return "", fmt.Errorf("%q is not a peer ID: want an identity multihash of 1 to %d bytes or a sha2-256 multihash, got hash code %#x of %d bytes", s, maxInlineKey, d.Code, d.Length)
	}
	return h.B58String(), nil
}

// parseContentID reads a CID written in any multibase go-cid reads.
func parseContentID(s string) (cid.Cid, error) {
	if len(s) > 256 {
		return cid.Undef, fmt.Errorf("CID of %d characters is too long", len(s))
	}
	c, err := cid.Decode(s)
	if err != nil {
		msg := err.Error()
		for strings.HasPrefix(msg, "invalid cid: ") {
			msg = strings.TrimPrefix(msg, "invalid cid: ")
		}
		return cid.Undef, fmt.Errorf("%q is not a CID (%s)", clip(s), msg)
	}
	return c, nil
}
