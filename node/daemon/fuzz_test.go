package daemon

import (
	"bytes"
	"crypto/rand"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-network/shoal/checkpoint/content"
)

// FuzzEnvelope: opening any bytes never panics, and an envelope that
// opens seals back to the same bytes.
func FuzzEnvelope(f *testing.F) {
	f.Add(seal("12D3KooWFKGGFmcK5J41C1osT1wLyLwNJDhoHPDKhhyQ4BsTr4NY", 7, []byte{1, 1, 2}))
	f.Add([]byte{1, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		author, seq, msg, err := open(b)
		if err != nil {
			return
		}
		if again := seal(author, seq, msg); !bytes.Equal(again, b) {
			// Non-minimal varints open but seal differently: that is
			// harmless (the message ID is the hash of what was sent),
			// but the parts must survive.
			a2, s2, m2, err := open(again)
			if err != nil || a2 != author || s2 != seq || !bytes.Equal(m2, msg) {
				t.Fatalf("reseal changed the envelope: %v", err)
			}
		}
	})
}

// FuzzToken: the admission check never panics on hostile tokens, and
// accepts nothing not signed by the tracker.
func FuzzToken(f *testing.F) {
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	other, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	p, _ := peer.IDFromPrivateKey(other)
	round := content.Sum([]byte("round"))
	good, _ := IssueToken(other, round, p, time.Unix(2_000_000_000, 0))
	tok, _ := ParseToken(good)
	f.Add(tok)
	f.Add([]byte{0x24, 0x01})
	admit := Admitter(key.GetPublic(), round)
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := admit(p.String(), b, time.Unix(1_900_000_000, 0)); err == nil {
			t.Fatal("admitted a token the tracker did not sign")
		}
	})
}

// FuzzInvite: parsing any text never panics.
func FuzzInvite(f *testing.F) {
	f.Add("shoal:bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku@/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWFKGGFmcK5J41C1osT1wLyLwNJDhoHPDKhhyQ4BsTr4NY")
	f.Add("shoal:@")
	f.Fuzz(func(t *testing.T, s string) {
		inv, err := ParseInvite(s)
		if err == nil && len(inv.Peers) == 0 {
			t.Fatal("an invite without peers parsed")
		}
	})
}
