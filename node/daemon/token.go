package daemon

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Access tokens of closed rounds. A token lets one peer take part in one
// round until it expires; the round's tracker signs it with its identity
// key. Its text form, for `shoal node join --token`, is
//
//	shoaltoken1.<base64url of the token>
//
// and the token is
//
//	round CID (uvarint length, bytes) | peer ID (uvarint length, bytes) |
//	expiry, Unix seconds (uvarint) | signature over the preceding bytes
//	(the rest)
const tokenPrefix = "shoaltoken1."

// IssueToken signs a token for peer p in round until expires.
func IssueToken(key crypto.PrivKey, round cid.Cid, p peer.ID, expires time.Time) (string, error) {
	body := tokenBody(round, p, expires)
	sig, err := key.Sign(body)
	if err != nil {
		return "", err
	}
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(append(body, sig...)), nil
}

func tokenBody(round cid.Cid, p peer.ID, expires time.Time) []byte {
	var b []byte
	rb, pb := round.Bytes(), []byte(p)
	b = binary.AppendUvarint(b, uint64(len(rb)))
	b = append(b, rb...)
	b = binary.AppendUvarint(b, uint64(len(pb)))
	b = append(b, pb...)
	return binary.AppendUvarint(b, uint64(expires.Unix()))
}

// ParseToken reads a token's text form into the bytes a Hello carries.
func ParseToken(s string) ([]byte, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), tokenPrefix)
	if !ok {
		return nil, fmt.Errorf("access token: must start with %q", tokenPrefix)
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return nil, fmt.Errorf("access token: %v", err)
	}
	return b, nil
}

var errToken = errors.New("malformed token")

func splitToken(b []byte) (round cid.Cid, p peer.ID, expires time.Time, body, sig []byte, err error) {
	rest := b
	take := func() []byte {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > 256 || uint64(len(rest)-k) < n {
			err = errToken
			return nil
		}
		v := rest[k : k+int(n)]
		rest = rest[k+int(n):]
		return v
	}
	rb := take()
	pb := take()
	if err != nil {
		return
	}
	exp, k := binary.Uvarint(rest)
	if k <= 0 || exp > 1<<40 {
		err = errToken
		return
	}
	rest = rest[k:]
	if round, err = cid.Cast(rb); err != nil {
		err = errToken
		return
	}
	if p, err = peer.IDFromBytes(pb); err != nil {
		err = errToken
		return
	}
	return round, p, time.Unix(int64(exp), 0), b[:len(b)-len(rest)], rest, nil
}

// Admitter returns the admission check of a closed round whose tracker
// has public key pub: a token must be for this round and this peer,
// unexpired, and signed by the tracker.
func Admitter(pub crypto.PubKey, round cid.Cid) func(peerID string, token []byte, now time.Time) error {
	return func(peerID string, token []byte, now time.Time) error {
		if len(token) == 0 {
			return errors.New("none presented (ask the round's researcher for one: shoal round invite --peer " + peerID + ")")
		}
		r, p, exp, body, sig, err := splitToken(token)
		if err != nil {
			return err
		}
		switch {
		case !r.Equals(round):
			return fmt.Errorf("the token is for round %s", r)
		case p.String() != peerID:
			return fmt.Errorf("the token is for peer %s", p)
		case !now.Before(exp):
			return fmt.Errorf("the token expired at %s", exp.UTC().Format(time.RFC3339))
		}
		ok, err := pub.Verify(body, sig)
		if err != nil || !ok {
			return errors.New("the token's signature is not the tracker's")
		}
		return nil
	}
}
