package daemon

import (
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-network/shoal/checkpoint/content"
)

func TestTokens(t *testing.T) {
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	other, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	pk, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	p, _ := peer.IDFromPrivateKey(pk)
	round := content.Sum([]byte("round"))
	now := time.Unix(1_800_000_000, 0)
	admit := Admitter(key.GetPublic(), round)

	text, err := IssueToken(key, round, p, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ParseToken(text)
	if err != nil {
		t.Fatal(err)
	}
	if err := admit(p.String(), tok, now); err != nil {
		t.Fatalf("good token refused: %v", err)
	}
	forged, _ := IssueToken(other, round, p, now.Add(time.Hour))
	ftok, _ := ParseToken(forged)
	q, _ := peer.IDFromPrivateKey(other)
	otherRound, _ := IssueToken(key, content.Sum([]byte("other")), p, now.Add(time.Hour))
	orTok, _ := ParseToken(otherRound)
	flipped := append([]byte(nil), tok...)
	flipped[len(flipped)-1] ^= 1
	for _, c := range []struct {
		name  string
		peer  string
		tok   []byte
		at    time.Time
		error string
	}{
		{"none", p.String(), nil, now, "none presented"},
		{"other signer", p.String(), ftok, now, "signature"},
		{"other peer", q.String(), tok, now, "for peer"},
		{"other round", p.String(), orTok, now, "for round"},
		{"expired", p.String(), tok, now.Add(2 * time.Hour), "expired"},
		{"bad signature", p.String(), flipped, now, "signature"},
		{"garbage", p.String(), []byte{0xff, 0xff, 0xff}, now, "malformed"},
	} {
		err := admit(c.peer, c.tok, c.at)
		if err == nil || !strings.Contains(err.Error(), c.error) {
			t.Errorf("%s: %v, want an error about %q", c.name, err, c.error)
		}
	}
	if _, err := ParseToken("bafk..."); err == nil {
		t.Error("parsed a token without its prefix")
	}
}
