package p2p

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func TestIdentityCreatedOnceAndReused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "identity.key")
	k1, err := LoadOrCreateIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("identity file mode %#o, want 0600", st.Mode().Perm())
	}
	k2, err := LoadOrCreateIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equals(k2) {
		t.Fatal("second load returned a different key")
	}
	if k1.Type() != crypto.Ed25519 {
		t.Fatalf("key type %v", k1.Type())
	}
	if matches, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".identity-*")); len(matches) != 0 {
		t.Fatalf("temporary files left behind: %v", matches)
	}
}

func TestIdentityBadFilesAreNeverReplaced(t *testing.T) {
	secp, _, err := crypto.GenerateSecp256k1Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	secpBytes, _ := crypto.MarshalPrivateKey(secp)
	ed, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	edBytes, _ := crypto.MarshalPrivateKey(ed)
	flipped := bytes.Clone(edBytes)
	flipped[len(flipped)-1] ^= 1 // public half no longer matches
	cases := []struct {
		name    string
		content []byte
		mode    os.FileMode
		reason  string
	}{
		{"empty", nil, 0o600, "corrupt"},
		{"garbage", []byte("this is not a key\n"), 0o600, "corrupt"},
		{"truncated", edBytes[:20], 0o600, "corrupt"},
		{"mismatched halves", flipped, 0o600, "corrupt"},
		{"wrong key type", secpBytes, 0o600, "Ed25519"},
		{"world readable", edBytes, 0o644, "0600"},
		{"too large", bytes.Repeat([]byte{1}, 5000), 0o600, "too large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "identity.key")
			if err := os.WriteFile(path, tc.content, tc.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			_, err := LoadOrCreateIdentity(path)
			var ie *IdentityError
			if !errors.As(err, &ie) {
				t.Fatalf("err = %v, want an IdentityError", err)
			}
			if !strings.Contains(err.Error(), tc.reason) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the file and %q", err, tc.reason)
			}
			got, _ := os.ReadFile(path)
			if !bytes.Equal(got, tc.content) {
				t.Fatal("the bad identity file was modified")
			}
		})
	}
}

func TestIdentityDirectoryIsAnError(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadOrCreateIdentity(dir); err == nil {
		t.Fatal("a directory was accepted as an identity file")
	}
}

func TestHostKeepsIdentityAcrossRestarts(t *testing.T) {
	opts := LoopbackOptions()
	opts.IdentityPath = filepath.Join(t.TempDir(), "identity.key")
	var ids []peer.ID
	for range 2 {
		h, err := New(t.Context(), opts)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, h.ID())
		if err := h.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if ids[0] != ids[1] {
		t.Fatalf("peer ID changed across restarts: %s then %s", ids[0], ids[1])
	}
}

func FuzzDecodeIdentity(f *testing.F) {
	ed, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	b, _ := crypto.MarshalPrivateKey(ed)
	f.Add(b)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := decodeIdentity("fuzz", data)
		if err != nil {
			var ie *IdentityError
			if !errors.As(err, &ie) {
				t.Fatalf("error is not an IdentityError: %v", err)
			}
			return
		}
		if k.Type() != crypto.Ed25519 {
			t.Fatalf("accepted a %v key", k.Type())
		}
	})
}
