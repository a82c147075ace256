package content

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

func TestSumMatchesGoCID(t *testing.T) {
	for _, data := range [][]byte{nil, []byte("a"), bytes.Repeat([]byte{7}, 5000)} {
		mh, err := multihash.Sum(data, multihash.SHA2_256, -1)
		if err != nil {
			t.Fatal(err)
		}
		want := cid.NewCidV1(cid.Raw, mh)
		if got := Sum(data); !got.Equals(want) {
			t.Fatalf("Sum(%d bytes) = %s, want %s", len(data), got, want)
		}
		if err := Verify(want, data); err != nil {
			t.Fatal(err)
		}
		d, err := Digest(want)
		if err != nil || !OfDigest(d).Equals(want) {
			t.Fatalf("Digest: %v, round trip %s", err, OfDigest(d))
		}
	}
}

func TestVerify(t *testing.T) {
	data := []byte("hello")
	c := Sum(data)
	var mm *MismatchError
	err := Verify(c, []byte("hellO"))
	if !errors.As(err, &mm) || !mm.Want.Equals(c) || !mm.Got.Equals(Sum([]byte("hellO"))) {
		t.Fatalf("Verify of wrong bytes = %v, want a MismatchError", err)
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a mismatch does not match ErrCorrupt: %v", err)
	}
	mh, _ := multihash.Sum(data, multihash.SHA2_512, -1)
	v0mh, _ := multihash.Sum(data, multihash.SHA2_256, -1)
	short, _ := multihash.Sum(data, multihash.SHA2_256, 20)
	for name, c := range map[string]cid.Cid{
		"undefined": cid.Undef,
		"short":     cid.NewCidV1(cid.Raw, short),
		"sha512":    cid.NewCidV1(cid.Raw, mh),
		"dag-pb":    cid.NewCidV1(cid.DagProtobuf, v0mh),
		"v0":        cid.NewCidV0(v0mh),
	} {
		if err := Verify(c, data); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: Verify = %v, want ErrUnsupported", name, err)
		}
		if err := Check(c); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: Check = %v, want ErrUnsupported", name, err)
		}
	}
}
