package checkpoint

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/checkpoint/content"
)

var errKilled = errors.New("process killed")

// killer stands for a process that dies after a given number of file
// operations: the operation that kills it is left half done (a temporary
// file holding a prefix of the data, or a removal not made) and every
// later one fails, as nothing runs after death.
type killer struct {
	r    *rand.Rand
	left int
	dead bool
}

func (k *killer) install(s *Store) {
	create, remove := quickCreate, s.remove
	s.create = func(path string, data []byte, syncDir bool) error {
		if k.tick() {
			tmp, _ := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
			tmp.Write(data[:k.r.IntN(len(data)+1)])
			tmp.Close()
			return errKilled
		}
		if k.dead {
			return errKilled
		}
		return create(path, data, syncDir)
	}
	s.remove = func(path string) error {
		if k.tick() || k.dead {
			return errKilled
		}
		return remove(path)
	}
}

// quickCreate writes a file as WriteFileAtomic does but without fsync,
// which only matters when the machine, not the process, stops.
func quickCreate(path string, data []byte, _ bool) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// tick counts an operation and reports whether it is the fatal one.
func (k *killer) tick() bool {
	if k.dead {
		return false
	}
	k.left--
	if k.left < 0 {
		k.dead = true
		return true
	}
	return false
}

// oracle is what the store's directory holds, judged by the test's own
// reading of the files (sha256 of each, manifests parsed by hand), not by
// the store's code.
type oracle struct {
	intact   map[cid.Cid]bool // checkpoints whose manifest and chunks are all intact
	damage   map[string]bool  // expected Verify findings, "kind id [checkpoint]"
	badChunk []cid.Cid        // chunk files whose content is wrong
}

func digestOf(c cid.Cid) []byte { d, _ := content.Digest(c); return d[:] }

func fileIntact(path string, id cid.Cid) (ok, exists bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return false, false
	}
	sum := sha256.Sum256(b)
	return bytes.Equal(sum[:], digestOf(id)), true
}

func inspect(t *testing.T, dir string) *oracle {
	o := &oracle{intact: map[cid.Cid]bool{}, damage: map[string]bool{}}
	chunkOK := map[cid.Cid]bool{}
	ents, _ := os.ReadDir(filepath.Join(dir, "chunks"))
	for _, e := range ents {
		c, err := cid.Decode(e.Name())
		if err != nil {
			continue
		}
		ok, _ := fileIntact(filepath.Join(dir, "chunks", e.Name()), c)
		chunkOK[c] = ok
		if !ok {
			o.badChunk = append(o.badChunk, c)
			o.damage[fmt.Sprintf("%s %s", CorruptChunk, c)] = true
		}
	}
	ents, _ = os.ReadDir(filepath.Join(dir, "manifests"))
	for _, e := range ents {
		id, err := cid.Decode(e.Name())
		if err != nil {
			continue
		}
		if ok, _ := fileIntact(filepath.Join(dir, "manifests", e.Name()), id); !ok {
			o.damage[fmt.Sprintf("%s %s", CorruptManifest, id)] = true
			continue
		}
		b, _ := os.ReadFile(filepath.Join(dir, "manifests", e.Name()))
		intact := true
		for off := 24; off < len(b); off += 32 {
			c := content.OfDigest([32]byte(b[off:]))
			ok, seen := chunkOK[c]
			if !seen {
				o.damage[fmt.Sprintf("%s %s %s", MissingChunk, c, id)] = true
			}
			intact = intact && ok
		}
		o.intact[id] = intact
	}
	return o
}

func verifyFindings(r *Report) map[string]bool {
	got := map[string]bool{}
	for _, d := range r.Damaged {
		k := fmt.Sprintf("%s %s", d.Kind, d.ID)
		if d.Kind == MissingChunk {
			k += " " + d.Checkpoint.String()
		}
		got[k] = true
	}
	return got
}

// linkDir makes dst a copy of the directory tree src by hard links: the
// store and damage below replace files rather than write into them.
func linkDir(t *testing.T, src, dst string) {
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		return os.Link(path, filepath.Join(dst, rel))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// damage harms one file of the store, as a non-atomic writer, a bad disk
// or a careless hand would, and returns what it did. It replaces files
// rather than writing into them, sparing the files they are linked to.
func damage(r *rand.Rand, dir string, built map[cid.Cid]*Chunked) string {
	writeFile := func(path string, b []byte, _ os.FileMode) {
		os.Remove(path)
		os.WriteFile(path, b, 0o644)
	}
	pick := func(sub string) string {
		ents, _ := os.ReadDir(filepath.Join(dir, sub))
		var names []string
		for _, e := range ents {
			if !isTemp(e.Name()) {
				names = append(names, e.Name())
			}
		}
		if len(names) == 0 {
			return ""
		}
		return filepath.Join(dir, sub, names[r.IntN(len(names))])
	}
	kind := r.IntN(9)
	sub := "chunks"
	if kind >= 5 && kind < 8 {
		sub = "manifests"
	}
	path := pick(sub)
	if path == "" {
		return "nothing to damage"
	}
	b, _ := os.ReadFile(path)
	switch kind {
	case 0, 5: // truncated
		writeFile(path, b[:r.IntN(len(b))], 0o644)
		return "truncated " + path
	case 1, 6: // a flipped bit
		if len(b) > 0 {
			b[r.IntN(len(b))] ^= 1 << r.IntN(8)
		}
		writeFile(path, b, 0o644)
		return "flipped a bit of " + path
	case 2: // missing
		os.Remove(path)
		return "removed " + path
	case 3: // another chunk's content
		other := pick("chunks")
		ob, _ := os.ReadFile(other)
		writeFile(path, ob, 0o644)
		return "copied " + other + " over " + path
	case 4: // appended garbage
		writeFile(path, append(b, 0), 0o644)
		return "extended " + path
	case 7: // a partly written manifest under its final name
		var ids []cid.Cid
		for id := range built {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i].KeyString() < ids[j].KeyString() })
		ch := built[ids[r.IntN(len(ids))]]
		mb, _ := ch.Manifest.MarshalBinary()
		p := filepath.Join(dir, "manifests", ch.ID.String())
		writeFile(p, mb[:r.IntN(len(mb))], 0o644)
		return "partly wrote " + p
	default: // a stray file that is no object
		writeFile(filepath.Join(dir, "chunks", "notes.txt"), []byte("hello"), 0o644)
		return "stray file"
	}
}

// TestCrashConsistency kills writers (Put, PutManifest, PutChunk, labels,
// pins, GC) at random file operations, damages files in place at random,
// then reopens the store and checks it against an oracle that reads the
// files itself: no temporary file survives the reopening, List shows
// exactly the intact checkpoints and each reads back bit for bit, nothing
// damaged is served, and Verify reports exactly the damage there is.
func TestCrashConsistency(t *testing.T) {
	iterations := 200
	if testing.Short() {
		iterations = 30
	}
	base := t.TempDir()
	s := openStore(t, base)
	built := map[cid.Cid]*Chunked{}
	build := func(n int) *Chunked {
		ch, err := BuildSize(stepCheckpoint(n), 256)
		if err != nil {
			t.Fatal(err)
		}
		built[ch.ID] = ch
		return ch
	}
	for n := range 3 {
		ch := build(n)
		if err := s.PutChunked(ch); err != nil {
			t.Fatal(err)
		}
		s.SetLabel(fmt.Sprintf("step-%d", n), ch.ID)
	}
	for n := 10; n < 16; n++ {
		build(n) // checkpoints the killed writers will try to store
	}
	var pending []*Chunked
	for _, ch := range built {
		pending = append(pending, ch)
	}
	sort.Slice(pending, func(i, j int) bool { return pending[i].ID.KeyString() < pending[j].ID.KeyString() })

	for it := range iterations {
		seed := uint64(it)
		r := rand.New(rand.NewPCG(seed, 99))
		dir := filepath.Join(t.TempDir(), "store")
		linkDir(t, base, dir)
		s, err := OpenStore(dir)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		k := &killer{r: r, left: r.IntN(50)}
		k.install(s)
		var log []string
		downloads, damaged := false, false
		for op := 0; op < 4 && !k.dead; op++ {
			ch := pending[r.IntN(len(pending))]
			switch r.IntN(6) {
			case 0, 1:
				log = append(log, fmt.Sprintf("put %s", ch.ID))
				s.PutChunked(ch)
			case 2:
				log = append(log, fmt.Sprintf("download %s", ch.ID))
				downloads = true
				s.PutManifest(ch.Manifest)
				for i, c := range ch.Manifest.Chunks {
					if r.IntN(2) == 0 {
						s.PutChunk(c, ch.Chunk(i))
					}
				}
			case 3:
				log = append(log, fmt.Sprintf("label+pin %s", ch.ID))
				s.SetLabel("head", ch.ID)
				s.Pin(ch.ID)
			default:
				keep := r.IntN(3)
				log = append(log, fmt.Sprintf("gc %d", keep))
				s.GC(keep)
			}
		}
		for range r.IntN(4) {
			log = append(log, damage(r, dir, built))
			damaged = true
		}
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("seed %d (killed: %v; %s): %s", seed, k.dead, strings.Join(log, "; "), fmt.Sprintf(format, args...))
		}

		// Reopen, as the restarted process does.
		s, err = OpenStore(dir)
		if err != nil {
			fail("reopen: %v", err)
		}
		filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err == nil && isTemp(d.Name()) {
				fail("temporary file %s survived reopening", path)
			}
			return nil
		})
		o := inspect(t, dir)
		infos, err := s.List()
		if err != nil {
			fail("list: %v", err)
		}
		listed := map[cid.Cid]bool{}
		for _, in := range infos {
			listed[in.ID] = true
			if !o.intact[in.ID] {
				fail("listed %s, which is not intact", in.ID)
			}
			c, err := s.Get(in.ID)
			if err != nil {
				fail("get of listed %s: %v", in.ID, err)
			}
			if want := built[in.ID]; want == nil || !bytes.Equal(marshal(t, c), want.Data) {
				fail("listed %s reads back wrong", in.ID)
			}
		}
		for id, ok := range o.intact {
			if ok && !listed[id] {
				fail("intact checkpoint %s not listed", id)
			}
			if !ok {
				if _, err := s.Get(id); !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNotFound) {
					fail("get of damaged %s: %v", id, err)
				}
			}
		}
		for _, c := range o.badChunk {
			if _, err := s.Chunk(c); !errors.Is(err, ErrCorrupt) {
				fail("chunk %s is damaged but Chunk gave %v", c, err)
			}
		}
		rep, err := s.Verify()
		if err != nil {
			fail("verify: %v", err)
		}
		// A killed writer alone leaves nothing damaged: chunks go before
		// the manifest that lists them, and GC removes a manifest before
		// its chunks.
		if !downloads && !damaged && !rep.OK() {
			fail("a killed writer left damage: %v", rep.Damaged)
		}
		got := verifyFindings(rep)
		if !mapsEqual(got, o.damage) {
			fail("verify found %v, want %v", keys(got), keys(o.damage))
		}
		// Writing a checkpoint again repairs it.
		s.create = quickCreate
		for id, ok := range o.intact {
			if ch := built[id]; !ok && ch != nil {
				if err := s.PutChunked(ch); err != nil {
					fail("repair %s: %v", id, err)
				}
				if _, err := s.Get(id); err != nil {
					fail("get after repair of %s: %v", id, err)
				}
			}
		}
	}
	// The iterations worked on links: the base store must be untouched.
	if r, err := openStore(t, base).Verify(); err != nil || !r.OK() {
		t.Fatalf("the base store was damaged: %v %v", r.Damaged, err)
	}
}

func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func keys(m map[string]bool) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
