package checkpoint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/shoal-network/shoal/checkpoint/content"
)

func TestBuildChunks(t *testing.T) {
	c := testCheckpoint(1, 17, 5, 8, 2)
	enc := marshal(t, c)
	for _, size := range []int{1, 3, 7, 8, 64, 1000, len(enc) - 1, len(enc), len(enc) + 1, ChunkSize} {
		ch, err := BuildSize(c, size)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ch.Data, enc) {
			t.Fatalf("chunk size %d: data differs from the encoding", size)
		}
		sp, err := Split(enc, size)
		if err != nil || sp.ID != ch.ID {
			t.Fatalf("chunk size %d: Split gives %s, Build %s (%v)", size, sp.ID, ch.ID, err)
		}
		m := ch.Manifest
		if m.Size != int64(len(enc)) || m.ChunkSize != size || len(m.Chunks) != (len(enc)+size-1)/size {
			t.Fatalf("chunk size %d: manifest %d bytes, %d chunks", size, m.Size, len(m.Chunks))
		}
		var joined []byte
		for i, id := range m.Chunks {
			b := ch.Chunk(i)
			if i < len(m.Chunks)-1 && len(b) != size || len(b) == 0 || len(b) > size {
				t.Fatalf("chunk size %d: chunk %d has %d bytes", size, i, len(b))
			}
			if content.Sum(b) != id {
				t.Fatalf("chunk size %d: chunk %d CID", size, i)
			}
			if err := content.Verify(id, b); err != nil {
				t.Fatal(err)
			}
			joined = append(joined, b...)
		}
		if !bytes.Equal(joined, enc) {
			t.Fatalf("chunk size %d: chunks do not join into the encoding", size)
		}
		mb, _ := m.MarshalBinary()
		if content.Sum(mb) != ch.ID {
			t.Fatalf("chunk size %d: ID is not the manifest's CID", size)
		}
	}
}

func TestIDIndependentOfParallelism(t *testing.T) {
	c := testCheckpoint(2, 64, 16, 32, 2)
	ids := map[cid.Cid]int{}
	for _, procs := range []int{1, 2, 3, 8} {
		old := runtime.GOMAXPROCS(procs)
		ch, err := BuildSize(c, 4096)
		runtime.GOMAXPROCS(old)
		if err != nil {
			t.Fatal(err)
		}
		ids[ch.ID]++
	}
	if len(ids) != 1 {
		t.Fatalf("IDs differ with GOMAXPROCS: %v", ids)
	}
}

func TestCIDForm(t *testing.T) {
	id, err := ID(oddCheckpoint())
	if err != nil {
		t.Fatal(err)
	}
	p := id.Prefix()
	if p.Version != 1 || p.Codec != cid.Raw || p.MhType != mh.SHA2_256 || p.MhLength != 32 {
		t.Errorf("ID prefix %+v", p)
	}
	if s := id.String(); s[:7] != "bafkrei" {
		t.Errorf("ID %s is not a base32 CIDv1 raw sha2-256", s)
	}
}

func TestManifestRoundTrip(t *testing.T) {
	ch, err := BuildSize(oddCheckpoint(), 16)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := ch.Manifest.MarshalBinary()
	m, err := DecodeManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := m.ID(); id != ch.ID {
		t.Fatalf("decoded manifest has ID %s, want %s", id, ch.ID)
	}
	empty := &Manifest{ChunkSize: 8}
	eb, err := empty.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeManifest(eb); err != nil {
		t.Fatalf("empty manifest: %v", err)
	}
}

func TestManifestMalformed(t *testing.T) {
	ch, _ := BuildSize(oddCheckpoint(), 16)
	good, _ := ch.Manifest.MarshalBinary()
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	cases := []struct {
		name, field string
		b           []byte
	}{
		{"short", "header", good[:10]},
		{"magic", "magic", edit(func(b []byte) []byte { b[2] = 'x'; return b })},
		{"version", "version", edit(func(b []byte) []byte { b[7] = 0; return b })},
		{"size", "size", edit(func(b []byte) []byte { binary.LittleEndian.PutUint64(b[8:], 1<<63); return b })},
		{"chunk zero", "chunk_size", edit(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[16:], 0); return b })},
		{"chunk huge", "chunk_size", edit(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[16:], MaxChunkSize+1); return b })},
		{"count", "count", edit(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[20:], 1); return b })},
		{"size vs count", "count", edit(func(b []byte) []byte { binary.LittleEndian.PutUint64(b[8:], 16*100); return b })},
		{"huge count", "count", edit(func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[8:], 1<<40)
			binary.LittleEndian.PutUint32(b[16:], 1<<10)
			binary.LittleEndian.PutUint32(b[20:], 1<<30)
			return b
		})},
		{"digests short", "digests", good[:len(good)-1]},
		{"digests long", "digests", append(bytes.Clone(good), 0)},
	}
	for _, c := range cases {
		_, err := DecodeManifest(c.b)
		var fe *FormatError
		if !errors.As(err, &fe) || fe.Format != "manifest" {
			t.Errorf("%s: error %v, want a manifest FormatError", c.name, err)
			continue
		}
		if fe.Field != c.field {
			t.Errorf("%s: field %q (%v), want %q", c.name, fe.Field, err, c.field)
		}
	}
	bad := &Manifest{Size: 1, ChunkSize: 1, Chunks: []cid.Cid{cid.NewCidV1(cid.DagCBOR, ch.Manifest.Chunks[0].Hash())}}
	if _, err := bad.MarshalBinary(); err == nil {
		t.Error("a manifest listing a dag-cbor CID encoded")
	}
}

func TestVerifyAndAssemble(t *testing.T) {
	ch, _ := BuildSize(oddCheckpoint(), 32)
	m := ch.Manifest
	chunks := make([][]byte, len(m.Chunks))
	for i := range chunks {
		chunks[i] = bytes.Clone(ch.Chunk(i))
	}
	got, err := Assemble(m, chunks)
	if err != nil || !bytes.Equal(got, ch.Data) {
		t.Fatalf("assemble: %v", err)
	}
	if _, err := Decode(got); err != nil {
		t.Fatal(err)
	}
	chunks[1][3] ^= 0x10
	if err := content.Verify(m.Chunks[1], chunks[1]); !errors.Is(err, ErrCorrupt) {
		t.Errorf("content.Verify of a flipped bit: %v", err)
	}
	if _, err := Assemble(m, chunks); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Assemble with a flipped bit: %v", err)
	}
	chunks[1][3] ^= 0x10
	chunks[2] = chunks[2][:5]
	if _, err := Assemble(m, chunks); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Assemble with a short chunk: %v", err)
	}
	if _, err := Assemble(m, chunks[:2]); err == nil {
		t.Error("Assemble with chunks missing succeeded")
	}
	if err := content.Verify(cid.NewCidV1(cid.DagCBOR, m.Chunks[0].Hash()), ch.Chunk(0)); err == nil {
		t.Error("content.Verify accepted a dag-cbor CID")
	}
}

func FuzzDecodeManifest(f *testing.F) {
	ch, _ := BuildSize(oddCheckpoint(), 64)
	b, _ := ch.Manifest.MarshalBinary()
	f.Add(b)
	e, _ := (&Manifest{ChunkSize: 1}).MarshalBinary()
	f.Add(e)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeManifest(b)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error is not a *FormatError: %v", err)
			}
			return
		}
		out, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("decoded a non-canonical manifest:\n in %x\nout %x", b, out)
		}
	})
}

func TestIDMatchesBuild(t *testing.T) {
	for _, c := range []*Checkpoint{{}, oddCheckpoint(), testCheckpoint(3, 512, 64, 128, 3)} {
		ch, err := Build(c)
		if err != nil {
			t.Fatal(err)
		}
		id, err := ID(c)
		if err != nil || id != ch.ID {
			t.Fatalf("ID %s (%v), Build %s (%d chunks)", id, err, ch.ID, len(ch.Manifest.Chunks))
		}
	}
}
