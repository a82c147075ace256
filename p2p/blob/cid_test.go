package blob

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
	}
}

func TestVerify(t *testing.T) {
	data := []byte("hello")
	c := Sum(data)
	var mm *MismatchError
	if err := Verify(c, []byte("hellO")); !errors.As(err, &mm) || !mm.Want.Equals(c) {
		t.Fatalf("Verify of wrong bytes = %v, want a MismatchError", err)
	}
	mh, _ := multihash.Sum(data, multihash.SHA2_512, -1)
	v0mh, _ := multihash.Sum(data, multihash.SHA2_256, -1)
	for name, c := range map[string]cid.Cid{
		"undefined": cid.Undef,
		"sha512":    cid.NewCidV1(cid.Raw, mh),
		"dag-pb":    cid.NewCidV1(cid.DagProtobuf, v0mh),
		"v0":        cid.NewCidV0(v0mh),
	} {
		if err := Verify(c, data); !errors.Is(err, ErrUnsupportedCID) {
			t.Errorf("%s: Verify = %v, want ErrUnsupportedCID", name, err)
		}
	}
}

func TestMemStoreRefusesUnverified(t *testing.T) {
	s := NewMemStore()
	if err := s.Put(Sum([]byte("x")), []byte("y")); err == nil {
		t.Fatal("MemStore stored bytes that do not match their CID")
	}
	if s.Len() != 0 {
		t.Fatal("store not empty")
	}
	if _, err := s.Get(Sum([]byte("x"))); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of missing = %v", err)
	}
}
