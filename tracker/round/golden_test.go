package round

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden files in testdata/golden")

// examples are the example specs in testdata; round.yaml is the template
// researchers copy.
var examples = []string{"round.yaml", "builtin-gpt-tiny.yaml", "corpus.yaml", "closed.yaml"}

func parseFile(t *testing.T, name string) *Spec {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Parse(b, name)
	if err != nil {
		t.Fatalf("%s:\n%v", name, err)
	}
	return s
}

// TestGolden checks the canonical encoding and round ID of every example
// against testdata/golden; go test -run Golden -rewrite regenerates them.
func TestGolden(t *testing.T) {
	var ids bytes.Buffer
	for _, name := range examples {
		s := parseFile(t, name)
		canon := s.Canonical()
		fmt.Fprintf(&ids, "%s %s\n", name, s.ID())
		golden := filepath.Join("testdata", "golden", strings.TrimSuffix(name, ".yaml")+".json")
		if *rewrite {
			if err := os.WriteFile(golden, append(canon, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test -run Golden -rewrite to create it)", err)
		}
		if !bytes.Equal(canon, bytes.TrimSuffix(want, []byte("\n"))) {
			t.Errorf("%s: canonical encoding changed; round IDs of existing rounds would change.\ngot:  %s\nwant: %s", name, canon, want)
		}
	}
	idsFile := filepath.Join("testdata", "golden", "ids.txt")
	if *rewrite {
		if err := os.WriteFile(idsFile, ids.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(idsFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ids.Bytes(), want) {
		t.Errorf("round IDs changed:\ngot:\n%swant:\n%s", ids.Bytes(), want)
	}
}

// TestGoldenID pins the round ID of the smallest example in the test
// itself, so a change to the encoding cannot pass by rewriting files.
func TestGoldenID(t *testing.T) {
	const want = "bafkreifur6t2t3b4zw3kesdu6a52qyu4xpoa7si642owkn7p6mvtc5bcja"
	if got := parseFile(t, "builtin-gpt-tiny.yaml").ID().String(); got != want {
		t.Errorf("round ID of builtin-gpt-tiny.yaml = %s, want %s", got, want)
	}
}

// TestIDIsCIDOfCanonical checks the ID against the definition: CIDv1, raw
// codec, sha2-256 of the canonical bytes.
func TestIDIsCIDOfCanonical(t *testing.T) {
	for _, name := range examples {
		s := parseFile(t, name)
		id := s.ID()
		p := id.Prefix()
		if p.Version != 1 || p.Codec != cid.Raw || p.MhType != mh.SHA2_256 || p.MhLength != 32 {
			t.Errorf("%s: ID %s has prefix %+v", name, id, p)
		}
		d, err := mh.Decode(id.Hash())
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(s.Canonical())
		if !bytes.Equal(d.Digest, sum[:]) {
			t.Errorf("%s: ID digest is not the sha2-256 of the canonical bytes", name)
		}
	}
}
