package checkpoint

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"
)

func openStore(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// stepCheckpoint returns a small checkpoint for step n.
func stepCheckpoint(n int) *Checkpoint {
	c := testCheckpoint(uint64(n), 7, 3, 4, 1)
	c.Meta[MetaStep] = strconv.Itoa(n)
	return c
}

// putSmall stores c in chunks of 128 bytes, so that even a small
// checkpoint has many chunks.
func putSmall(t testing.TB, s *Store, c *Checkpoint) cid.Cid {
	t.Helper()
	ch, err := BuildSize(c, 128)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutChunked(ch); err != nil {
		t.Fatal(err)
	}
	return ch.ID
}

func listIDs(t testing.TB, s *Store) []cid.Cid {
	t.Helper()
	infos, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var ids []cid.Cid
	for _, in := range infos {
		ids = append(ids, in.ID)
	}
	return ids
}

func sameCheckpoint(t testing.TB, got, want *Checkpoint) {
	t.Helper()
	if !bytes.Equal(marshal(t, got), marshal(t, want)) {
		t.Fatal("checkpoint read back differs from the one written")
	}
}

func TestStorePutGet(t *testing.T) {
	s := openStore(t, t.TempDir())
	c := testCheckpoint(1, 64, 16, 32, 2)
	id, err := s.Put(c)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := ID(c); id != want {
		t.Fatalf("Put returned %s, ID is %s", id, want)
	}
	got, err := s.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	sameCheckpoint(t, got, c)
	h, err := s.Header(id)
	if err != nil || h.Meta[MetaStep] != "42" || len(h.Tensors) != len(c.Tensors) {
		t.Fatalf("header %+v, %v", h, err)
	}
	// Putting it again changes nothing.
	if id2, err := s.Put(c); err != nil || id2 != id {
		t.Fatalf("second put: %s, %v", id2, err)
	}
	infos, err := s.List()
	if err != nil || len(infos) != 1 {
		t.Fatalf("list: %+v, %v", infos, err)
	}
	if in := infos[0]; in.ID != id || in.Size != int64(len(marshal(t, c))) || len(in.Tensors) != len(c.Tensors) {
		t.Errorf("info %+v", in)
	}
	if n, ok := infos[0].Step(); !ok || n != 42 {
		t.Errorf("step %d %v", n, ok)
	}
	other := stepCheckpoint(9)
	oid, _ := ID(other)
	if _, err := s.Get(oid); !errors.Is(err, ErrNotFound) {
		t.Errorf("get of an absent checkpoint: %v", err)
	}
}

func TestStoreLabelsPins(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	a := putSmall(t, s, stepCheckpoint(1))
	b := putSmall(t, s, stepCheckpoint(2))
	if err := s.SetLabel("head", a); err != nil {
		t.Fatal(err)
	}
	if err := s.SetLabel("head", b); err != nil {
		t.Fatal(err)
	}
	if err := s.SetLabel("step-1", a); err != nil {
		t.Fatal(err)
	}
	if err := s.Pin(a); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "-x", "a b", "x/y", b.String(), string(make([]byte, MaxLabel+1))} {
		if err := s.SetLabel(bad, a); err == nil {
			t.Errorf("label %q accepted", bad)
		}
	}
	absent, _ := ID(stepCheckpoint(3))
	if err := s.SetLabel("x", absent); !errors.Is(err, ErrNotFound) {
		t.Errorf("label of an absent checkpoint: %v", err)
	}
	if err := s.Pin(absent); !errors.Is(err, ErrNotFound) {
		t.Errorf("pin of an absent checkpoint: %v", err)
	}
	// Everything survives reopening.
	s = openStore(t, dir)
	for ref, want := range map[string]cid.Cid{"head": b, "step-1": a, a.String(): a} {
		if got, err := s.Resolve(ref); err != nil || got != want {
			t.Errorf("resolve %s: %s, %v", ref, got, err)
		}
	}
	if _, err := s.Resolve("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("resolve of an unknown label: %v", err)
	}
	infos, _ := s.List()
	if len(infos) != 2 || infos[0].ID != a || !infos[0].Pinned || !slices.Equal(infos[0].Labels, []string{"step-1"}) ||
		infos[1].ID != b || infos[1].Pinned || !slices.Equal(infos[1].Labels, []string{"head"}) {
		t.Errorf("list %+v", infos)
	}
	if err := s.Unpin(a); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveLabel("step-1"); err != nil {
		t.Fatal(err)
	}
	ls, _ := s.Labels()
	if len(ls) != 1 || ls["head"] != b {
		t.Errorf("labels %v", ls)
	}
}

func TestStoreGC(t *testing.T) {
	s := openStore(t, t.TempDir())
	var ids []cid.Cid
	for i := range 6 {
		ids = append(ids, putSmall(t, s, stepCheckpoint(i)))
	}
	if err := s.Pin(ids[1]); err != nil {
		t.Fatal(err)
	}
	s.SetLabel("old", ids[0])
	s.SetLabel("head", ids[5])
	// A download in progress: a manifest newer than every complete
	// checkpoint, one chunk present.
	dl, _ := BuildSize(stepCheckpoint(100), 128)
	if _, err := s.PutManifest(dl.Manifest); err != nil {
		t.Fatal(err)
	}
	if err := s.PutChunk(dl.Manifest.Chunks[0], dl.Chunk(0)); err != nil {
		t.Fatal(err)
	}
	// An abandoned download, older than a complete checkpoint.
	old, _ := BuildSize(stepCheckpoint(200), 128)
	s.PutManifest(old.Manifest)
	miss, err := s.Missing(dl.ID)
	if err != nil || len(miss) != len(dl.Manifest.Chunks)-1 {
		t.Fatalf("missing %d, %v", len(miss), err)
	}
	newest := putSmall(t, s, stepCheckpoint(6))
	dl2, _ := BuildSize(stepCheckpoint(101), 128)
	s.PutManifest(dl2.Manifest)

	res, err := s.GC(2)
	if err != nil {
		t.Fatal(err)
	}
	want := []cid.Cid{ids[1], ids[5], newest}
	if got := listIDs(t, s); !slices.Equal(got, want) {
		t.Errorf("after GC(2): %v, want %v", got, want)
	}
	if len(res.Removed) != 6 || res.Chunks == 0 || res.Bytes == 0 {
		t.Errorf("GC result %+v", res)
	}
	if _, err := s.Manifest(dl2.ID); err != nil {
		t.Errorf("the download in progress was removed: %v", err)
	}
	for _, gone := range []cid.Cid{ids[0], dl.ID, old.ID} {
		if _, err := s.Manifest(gone); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s survived GC: %v", gone, err)
		}
	}
	if ls, _ := s.Labels(); len(ls) != 1 || ls["head"] != ids[5] {
		t.Errorf("labels after GC: %v", ls)
	}
	// Every chunk left is listed by a manifest left, and nothing is damaged.
	r, err := s.Verify(ids[1], ids[5], newest)
	if err != nil || !r.OK() {
		t.Fatalf("verify: %+v, %v", r, err)
	}
	chunks, _ := s.ids("chunks")
	listed := map[cid.Cid]bool{}
	for _, id := range []cid.Cid{ids[1], ids[5], newest, dl2.ID} {
		m, _ := s.Manifest(id)
		for _, c := range m.Chunks {
			listed[c] = true
		}
	}
	for _, c := range chunks {
		if !listed[c] {
			t.Errorf("chunk %s survived GC unlisted", c)
		}
	}
	if _, err := s.GC(0); err != nil {
		t.Fatal(err)
	}
	if got := listIDs(t, s); !slices.Equal(got, []cid.Cid{ids[1]}) {
		t.Errorf("after GC(0): %v, want only the pinned one", got)
	}
}

func TestStoreDownload(t *testing.T) {
	src := openStore(t, t.TempDir())
	dst := openStore(t, t.TempDir())
	c := stepCheckpoint(5)
	id := putSmall(t, src, c)
	m, err := src.Manifest(id)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := dst.PutManifest(m); err != nil || got != id {
		t.Fatalf("put manifest: %s, %v", got, err)
	}
	for i, cc := range m.Chunks {
		if len(listIDs(t, dst)) != 0 {
			t.Fatalf("listed with %d of %d chunks", i, len(m.Chunks))
		}
		if _, err := dst.Get(id); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get of a partial download: %v", err)
		}
		b, err := src.Chunk(cc)
		if err != nil {
			t.Fatal(err)
		}
		if err := dst.PutChunk(m.Chunks[(i+1)%len(m.Chunks)], b); !errors.Is(err, ErrCorrupt) && len(m.Chunks) > 1 {
			t.Fatalf("a chunk under another's CID: %v", err)
		}
		if err := dst.PutChunk(cc, b); err != nil {
			t.Fatal(err)
		}
	}
	got, err := dst.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	sameCheckpoint(t, got, c)
	if ids := listIDs(t, dst); len(ids) != 1 {
		t.Fatalf("listed %v", ids)
	}
}

// TestStoreDetectsCorruption damages files in place and checks that reads
// fail, List drops the checkpoint and a new Put repairs it.
func TestStoreDetectsCorruption(t *testing.T) {
	s := openStore(t, t.TempDir())
	c := stepCheckpoint(1)
	id := putSmall(t, s, c)
	m, _ := s.Manifest(id)
	path := s.chunkPath(m.Chunks[3])
	b, _ := os.ReadFile(path)
	b[10] ^= 1
	os.WriteFile(path, b, 0o644)
	if _, err := s.Get(id); !errors.Is(err, ErrCorrupt) {
		t.Errorf("get: %v", err)
	}
	if _, err := s.Chunk(m.Chunks[3]); !errors.Is(err, ErrCorrupt) {
		t.Errorf("chunk: %v", err)
	}
	if ids := listIDs(t, s); len(ids) != 0 {
		t.Errorf("listed a damaged checkpoint")
	}
	r, _ := s.Verify()
	if len(r.Damaged) != 1 || r.Damaged[0].Kind != CorruptChunk || r.Damaged[0].ID != m.Chunks[3] {
		t.Errorf("verify: %+v", r.Damaged)
	}
	if miss, _ := s.Missing(id); len(miss) != 1 || miss[0] != m.Chunks[3] {
		t.Errorf("missing %v", miss)
	}
	putSmall(t, s, c)
	got, err := s.Get(id)
	if err != nil {
		t.Fatalf("after a repairing put: %v", err)
	}
	sameCheckpoint(t, got, c)
}

func TestStoreCleansTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	putSmall(t, s, stepCheckpoint(1))
	temps := []string{
		filepath.Join(dir, "chunks", ".bafkreiabc.tmp-123"),
		filepath.Join(dir, "manifests", ".bafkreiabc.tmp-9"),
		filepath.Join(dir, ".index.json.tmp-77"),
	}
	for _, p := range temps {
		os.WriteFile(p, []byte("partial"), 0o644)
	}
	// While another process uses the store, its temporary files may be
	// live: they are left alone.
	unlock, err := lockFile(filepath.Join(dir, "lock"), false, true)
	if err != nil {
		t.Fatal(err)
	}
	openStore(t, dir)
	for _, p := range temps {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s removed while the store was in use", p)
		}
	}
	unlock()
	openStore(t, dir)
	for _, p := range temps {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left after open", p)
		}
	}
}

func TestStoreIndexErrors(t *testing.T) {
	dir := t.TempDir()
	openStore(t, dir)
	for _, bad := range []string{"{", `{"version":2}`, `{"version":1,"order":["x"]}`, `{"version":1,"labels":{"a b":"x"}}`, `{"version":1,"extra":1}`} {
		os.WriteFile(filepath.Join(dir, indexName), []byte(bad), 0o644)
		_, err := OpenStore(dir)
		var fe *FormatError
		if !errors.As(err, &fe) || fe.Format != "index" {
			t.Errorf("index %s: %v", bad, err)
		}
	}
}

// TestStoreConcurrent runs writers, readers, labellers and GC at once
// (meaningful under -race): every checkpoint read is intact.
func TestStoreConcurrent(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	const writers, each = 3, 6
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				n := w*100 + i
				c := stepCheckpoint(n)
				ch, err := BuildSize(c, 256)
				if err != nil {
					errs <- err
					return
				}
				if err := s.PutChunked(ch); err != nil {
					errs <- err
					return
				}
				if err := s.SetLabel(fmt.Sprintf("w%d", w), ch.ID); err != nil && !errors.Is(err, ErrNotFound) {
					errs <- err
					return
				}
				got, err := s.Get(ch.ID)
				if err != nil {
					if errors.Is(err, ErrNotFound) {
						continue // collected already
					}
					errs <- err
					return
				}
				if !bytes.Equal(marshal(t, got), ch.Data) {
					errs <- fmt.Errorf("checkpoint %d read back wrong", n)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 10 {
			if _, err := s.GC(3); err != nil {
				errs <- err
				return
			}
			if _, err := s.List(); err != nil {
				errs <- err
				return
			}
		}
	})
	// A second Store on the same directory stands for another process.
	s2 := openStore(t, dir)
	wg.Go(func() {
		for range 10 {
			if _, err := s2.GC(4); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	r, err := s.Verify()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range r.Damaged {
		t.Errorf("damage after concurrent use: %s", d)
	}
}

func FuzzParseIndex(f *testing.F) {
	c1, _ := ID(stepCheckpoint(1))
	c2, _ := ID(stepCheckpoint(2))
	ix := newIndex()
	ix.order = []cid.Cid{c1, c2}
	ix.labels["head"] = c2
	ix.pins[c1] = true
	f.Add(ix.marshal())
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ix, err := parseIndex(b)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error is not a *FormatError: %v", err)
			}
			return
		}
		out := ix.marshal()
		ix2, err := parseIndex(out)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if !bytes.Equal(ix2.marshal(), out) {
			t.Fatal("index does not survive a round trip")
		}
	})
}
