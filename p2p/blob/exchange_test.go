package blob

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/shoal-network/shoal/checkpoint/content"
	"github.com/shoal-network/shoal/p2p/internal/testlog"
)

// checkedStore wraps a MemStore and counts Puts of bytes that do not hash
// to their CID, independently of MemStore's own check.
type checkedStore struct {
	*MemStore
	unverified atomic.Int64
	puts       atomic.Int64
}

func newCheckedStore() *checkedStore { return &checkedStore{MemStore: NewMemStore()} }

func (s *checkedStore) PutVerified(c cid.Cid, data []byte) error {
	s.puts.Add(1)
	if content.Verify(c, data) != nil {
		s.unverified.Add(1)
	}
	return s.MemStore.Put(c, data)
}

// corruptStore serves a flipped byte in every chunk it is asked for
// (everything but the manifests in skip).
type corruptStore struct {
	Store
	skip map[cid.Cid]bool
}

func (s *corruptStore) Get(c cid.Cid) ([]byte, error) {
	b, err := s.Store.Get(c)
	if err != nil || s.skip[c] {
		return b, err
	}
	out := bytes.Clone(b)
	out[len(out)/2] ^= 0x40
	return out, nil
}

// subsetStore holds only the objects keep admits.
type subsetStore struct {
	Store
	keep func(cid.Cid) bool
}

func (s *subsetStore) Has(c cid.Cid) bool { return s.keep(c) && s.Store.Has(c) }
func (s *subsetStore) Get(c cid.Cid) ([]byte, error) {
	if !s.keep(c) {
		return nil, ErrNotFound
	}
	return s.Store.Get(c)
}

type testNet struct {
	fetcher   *Exchange
	store     *checkedStore
	providers []*Exchange
	ids       []peer.ID
	log       *testlog.Recorder
}

// newTestNet starts one fetching exchange and one providing exchange per
// store, all on hosts from mk, the fetcher connected to every provider.
func newTestNet(t testing.TB, mk func() host.Host, fopts Options, stores ...Store) *testNet {
	t.Helper()
	n := &testNet{store: newCheckedStore(), log: &testlog.Recorder{}}
	fopts.Logger = slog.New(n.log)
	fh := mk()
	var err error
	n.fetcher, err = New(fh, n.store, fopts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.fetcher.Close() })
	for _, s := range stores {
		ph := mk()
		x, err := New(ph, s, Options{Logger: slog.New(n.log)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { x.Close() })
		connect(t, fh, ph)
		n.providers = append(n.providers, x)
		n.ids = append(n.ids, ph.ID())
	}
	return n
}

func tcpHost(t testing.TB) func() host.Host {
	return func() host.Host { return newLoopbackHost(t, "tcp") }
}

func TestFetchSmall(t *testing.T) {
	data := randBytes(1, 5<<20+123)
	src := NewMemStore()
	root, err := Put(src, data, 256<<10)
	if err != nil {
		t.Fatal(err)
	}
	n := newTestNet(t, tcpHost(t), Options{}, src)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := n.fetcher.Fetch(ctx, root, n.ids)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadAll(n.store, root)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("fetched blob differs (%v)", err)
	}
	if res.Fetched != res.Chunks || res.Size != int64(len(data)) {
		t.Fatalf("result %+v", res)
	}
	// A second fetch finds everything in the store.
	res, err = n.fetcher.Fetch(ctx, root, n.ids)
	if err != nil || res.Fetched != 0 {
		t.Fatalf("refetch: %+v %v", res, err)
	}
}

// TestFetchCorruptProvider is acceptance test 2: a 64 MiB blob from three
// providers at once, one of which corrupts every chunk it serves.
func TestFetchCorruptProvider(t *testing.T) {
	const size = 64 << 20
	data := randBytes(2, size)
	good := NewMemStore()
	root, err := Put(good, data, DefaultChunkSize)
	if err != nil {
		t.Fatal(err)
	}
	bad := &corruptStore{Store: good, skip: map[cid.Cid]bool{root: true}}
	for _, tr := range []string{"tcp", "quic"} {
		t.Run(tr, func(t *testing.T) {
			var reported []Misbehaviour
			var mu sync.Mutex
			opts := Options{OnMisbehaviour: func(m Misbehaviour) {
				mu.Lock()
				reported = append(reported, m)
				mu.Unlock()
			}}
			n := newTestNet(t, func() host.Host { return newLoopbackHost(t, tr) }, opts, good, bad, good)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			start := time.Now()
			res, err := n.fetcher.Fetch(ctx, root, n.ids)
			if err != nil {
				t.Fatal(err)
			}
			elapsed := time.Since(start)
			got, err := ReadAll(n.store, root)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatal("fetched blob differs")
			}
			if m, _ := LoadManifest(n.store, root); m == nil {
				t.Fatal("manifest not stored")
			}
			if u := n.store.unverified.Load(); u != 0 {
				t.Fatalf("%d unverified objects reached the store", u)
			}
			badID := n.ids[1]
			mu.Lock()
			defer mu.Unlock()
			if len(reported) != 1 || reported[0].Peer != badID || !reported[0].Blob.Equals(root) {
				t.Fatalf("misbehaviour reports %+v, want one for %s", reported, badID)
			}
			if len(res.Misbehaving) != 1 || res.Misbehaving[0].Peer != badID {
				t.Fatalf("result misbehaving = %+v", res.Misbehaving)
			}
			if n.fetcher.Penalties(badID) != 1 {
				t.Fatalf("penalties for the corrupt provider = %d", n.fetcher.Penalties(badID))
			}
			if res.BytesFrom[badID] != 0 {
				t.Fatalf("%d bytes credited to the corrupt provider", res.BytesFrom[badID])
			}
			for _, id := range []peer.ID{n.ids[0], n.ids[2]} {
				if res.BytesFrom[id] == 0 {
					t.Errorf("good provider %s delivered nothing", id)
				}
			}
			if line, ok := n.log.Find("misbehaved", badID.String(), "fail verification"); !ok {
				t.Fatalf("no log line naming the corrupt provider:\n%s", n.log)
			} else {
				t.Log(line)
			}
			t.Logf("%s: 64 MiB from 3 providers (1 corrupt) in %v (%.0f MB/s); bytes per provider %v; %d puts",
				tr, elapsed.Round(time.Millisecond), size/elapsed.Seconds()/1e6, res.BytesFrom, n.store.puts.Load())
		})
	}
}

func TestFetchSpreadsAndFallsBack(t *testing.T) {
	data := randBytes(3, 40*testChunk)
	full := NewMemStore()
	root, err := Put(full, data, testChunk)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := LoadManifest(full, root)
	even := make(map[cid.Cid]bool)
	for i, c := range m.Chunks {
		if i%2 == 0 {
			even[c] = true
		}
	}
	evens := &subsetStore{Store: full, keep: func(c cid.Cid) bool { return c.Equals(root) || even[c] }}
	odds := &subsetStore{Store: full, keep: func(c cid.Cid) bool { return !even[c] }}
	empty := NewMemStore()
	n := newTestNet(t, tcpHost(t), Options{}, empty, evens, odds)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := n.fetcher.Fetch(ctx, root, n.ids)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := ReadAll(n.store, root)
	if !bytes.Equal(got, data) {
		t.Fatal("fetched blob differs")
	}
	if res.BytesFrom[n.ids[1]] < 20*testChunk || res.BytesFrom[n.ids[2]] < 20*testChunk {
		t.Fatalf("bytes per provider %v", res.BytesFrom)
	}

	// With only the even half available the fetch fails, saying why, and
	// keeps what it got, the manifest first, for a later resume.
	n2 := newTestNet(t, tcpHost(t), Options{}, evens)
	_, err = n2.fetcher.Fetch(ctx, root, n2.ids)
	if err == nil {
		t.Fatal("fetch with half the chunks succeeded")
	}
	t.Log(err)
	if !n2.store.Has(root) {
		t.Fatal("manifest of the incomplete blob not kept")
	}
	if got := n2.store.Len(); got != 21 {
		t.Fatalf("kept %d objects, want the manifest and the 20 even chunks", got)
	}
	// Resume from the odd half plus the manifest from full.
	n3 := newTestNet(t, tcpHost(t), Options{}, odds, full)
	n3.fetcher.store = n2.store
	res, err = n3.fetcher.Fetch(ctx, root, n3.ids)
	if err != nil {
		t.Fatal(err)
	}
	if res.Fetched != 20 {
		t.Fatalf("resume fetched %d chunks, want 20", res.Fetched)
	}
}

func TestFetchNoProviders(t *testing.T) {
	n := newTestNet(t, tcpHost(t), Options{}, NewMemStore())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := n.fetcher.Fetch(ctx, content.Sum([]byte("nope")), n.ids); err == nil {
		t.Fatal("fetch of a blob nobody has succeeded")
	}
	if _, err := n.fetcher.Fetch(ctx, content.Sum([]byte("nope")), nil); err == nil {
		t.Fatal("fetch without providers succeeded")
	}
	// A root that is not a manifest: the provider serves verified bytes,
	// and the fetch fails without blaming it.
	src := NewMemStore()
	raw := []byte("just some bytes")
	_ = src.Put(content.Sum(raw), raw)
	n = newTestNet(t, tcpHost(t), Options{}, src)
	_, err := n.fetcher.Fetch(ctx, content.Sum(raw), n.ids)
	var fe *content.FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("fetch of a non-manifest = %v", err)
	}
	if n.fetcher.Penalties(n.ids[0]) != 0 {
		t.Fatal("provider penalised for serving what was asked")
	}
}

// rawServer installs handler for the blob protocol on a fresh host in
// place of an Exchange.
func rawServer(t *testing.T, handler network.StreamHandler) host.Host {
	h := newLoopbackHost(t, "tcp")
	h.SetStreamHandler(ProtocolID, handler)
	return h
}

func TestHostileResponses(t *testing.T) {
	data := randBytes(4, 8*testChunk)
	good := NewMemStore()
	root, err := Put(good, data, testChunk)
	if err != nil {
		t.Fatal(err)
	}
	manifest, _ := good.Get(root)
	serveReq := func(s network.Stream) (request, bool) {
		req, err := readRequest(bufio.NewReader(s))
		if err != nil {
			s.Reset()
			return req, false
		}
		if req.CID.Equals(root) {
			s.Write(appendResponseHeader(nil, StatusOK, len(manifest)))
			s.Write(manifest)
			s.Close()
			return req, false
		}
		return req, true
	}
	hostile := map[string]network.StreamHandler{
		"absurd length": func(s network.Stream) {
			if _, ok := serveReq(s); ok {
				s.Write(appendResponseHeader(nil, StatusOK, 1<<40))
				s.Close()
			}
		},
		"unknown status": func(s network.Stream) {
			if _, ok := serveReq(s); ok {
				s.Write([]byte{99})
				s.Close()
			}
		},
		"wrong length": func(s network.Stream) {
			if req, ok := serveReq(s); ok {
				s.Write(appendResponseHeader(nil, StatusOK, req.MaxLen-1))
				s.Write(make([]byte, req.MaxLen-1))
				s.Close()
			}
		},
		"garbage bytes": func(s network.Stream) {
			if req, ok := serveReq(s); ok {
				s.Write(appendResponseHeader(nil, StatusOK, req.MaxLen))
				s.Write(randBytes(9, req.MaxLen))
				s.Close()
			}
		},
		"too large for a chunk": func(s network.Stream) {
			if _, ok := serveReq(s); ok {
				s.Write([]byte{byte(StatusTooLarge)})
				s.Close()
			}
		},
	}
	for name, handler := range hostile {
		t.Run(name, func(t *testing.T) {
			n := newTestNet(t, tcpHost(t), Options{}, good)
			bad := rawServer(t, handler)
			connect(t, n.fetcher.h, bad)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			// The hostile provider first, so it is asked for chunks.
			res, err := n.fetcher.Fetch(ctx, root, []peer.ID{bad.ID(), n.ids[0]})
			if err != nil {
				t.Fatal(err)
			}
			got, _ := ReadAll(n.store, root)
			if !bytes.Equal(got, data) {
				t.Fatal("fetched blob differs")
			}
			if len(res.Misbehaving) != 1 || res.Misbehaving[0].Peer != bad.ID() {
				t.Fatalf("misbehaving = %+v", res.Misbehaving)
			}
			if _, ok := n.log.Find("misbehaved", bad.ID().String()); !ok {
				t.Fatalf("no log line names the hostile provider:\n%s", n.log)
			}
			if n.store.unverified.Load() != 0 {
				t.Fatal("unverified bytes stored")
			}
		})
	}
}

// TestHostileRequests sends malformed requests to a serving exchange and
// checks it logs each with the peer and reason and keeps serving.
func TestHostileRequests(t *testing.T) {
	data := randBytes(5, 4*testChunk)
	src := NewMemStore()
	root, err := Put(src, data, testChunk)
	if err != nil {
		t.Fatal(err)
	}
	n := newTestNet(t, tcpHost(t), Options{}, src)
	attacker := newLoopbackHost(t, "tcp")
	connect(t, attacker, n.providers[0].h)
	c := content.Sum([]byte("x")).Bytes()
	absurd := []byte{wireVersion, opGet, byte(len(c))}
	absurd = append(absurd, c...)
	absurd = append(absurd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f)
	cases := map[string]struct {
		payload []byte
		reason  string
	}{
		"garbage":     {[]byte("\x00\x01\x02garbage that is not a request"), "unknown version"},
		"absurd size": {absurd, "absurd size"},
		"bad cid":     {[]byte{wireVersion, opGet, 3, 1, 2, 3, 1}, "CID"},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for name, tc := range cases {
		s, err := attacker.NewStream(ctx, n.providers[0].h.ID(), ProtocolID)
		if err != nil {
			t.Fatal(err)
		}
		s.Write(tc.payload)
		s.CloseWrite()
		st, _, err := readResponseHeader(bufio.NewReader(s), 1)
		s.Close()
		if err != nil || st != StatusBadRequest {
			t.Errorf("%s: response %v %v, want bad request", name, st, err)
		}
		if _, ok := n.log.Find("rejected request", attacker.ID().String(), tc.reason); !ok {
			t.Errorf("%s: no log line with peer and reason %q:\n%s", name, tc.reason, n.log)
		}
	}
	// A peer that opens a stream and sends nothing is cut off by the
	// header timeout without holding a serving slot; meanwhile others
	// are served.
	s, err := attacker.NewStream(ctx, n.providers[0].h.ID(), ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Reset()
	if _, err := n.fetcher.Fetch(ctx, root, n.ids); err != nil {
		t.Fatalf("honest fetch after hostile requests: %v", err)
	}
}

func TestServeCaps(t *testing.T) {
	data := randBytes(6, 64<<10)
	src := NewMemStore()
	root, _ := Put(src, data, 64<<10)
	m, _ := LoadManifest(src, root)
	ph := newLoopbackHost(t, "tcp")
	// 64 KiB/s upload: one 64 KiB chunk keeps a slot busy for most of a second.
	x, err := New(ph, src, Options{ServePerPeer: 1, ServeConcurrency: 1, UploadRate: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	fh := newLoopbackHost(t, "tcp")
	f, err := New(fh, NewMemStore(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	connect(t, fh, ph)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			var rs *reqStream
			_, err := f.getObject(ctx, ph.ID(), &rs, m.Chunks[0], 64<<10, true)
			rs.close()
			errs <- err
		}()
	}
	var ok, busy int
	for range 3 {
		err := <-errs
		switch {
		case err == nil:
			ok++
		case kindOf(err) == failBusy:
			busy++
		default:
			t.Fatalf("unexpected error %v", err)
		}
	}
	if ok < 1 || busy < 1 {
		t.Fatalf("ok %d busy %d: the serving cap did not apply", ok, busy)
	}
}

func TestBandwidthLimits(t *testing.T) {
	const size = 2 << 20
	const rate = 1 << 20 // bytes/s
	data := randBytes(7, size)
	src := NewMemStore()
	root, _ := Put(src, data, 256<<10)
	for _, dir := range []string{"down", "up"} {
		t.Run(dir, func(t *testing.T) {
			var fopts, popts Options
			if dir == "down" {
				fopts.DownloadRate = rate
			} else {
				popts.UploadRate = rate
			}
			fh, ph := newLoopbackHost(t, "tcp"), newLoopbackHost(t, "tcp")
			f, _ := New(fh, NewMemStore(), fopts)
			defer f.Close()
			p, _ := New(ph, src, popts)
			defer p.Close()
			connect(t, fh, ph)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			start := time.Now()
			if _, err := f.Fetch(ctx, root, []peer.ID{ph.ID()}); err != nil {
				t.Fatal(err)
			}
			el := time.Since(start)
			// The bucket starts full (a tenth of a second of traffic).
			minTime := time.Duration(size-rate/10) * time.Second / rate
			if el < minTime*9/10 || el > 3*minTime {
				t.Fatalf("%d bytes at %d B/s took %v, want about %v", size, rate, el, minTime)
			}
			t.Logf("%s: %.2f MiB/s with a 1 MiB/s cap", dir, float64(size)/el.Seconds()/(1<<20))
		})
	}
}

func TestCloseDuringFetch(t *testing.T) {
	data := randBytes(8, 4<<20)
	src := NewMemStore()
	root, _ := Put(src, data, 256<<10)
	fh, ph := newLoopbackHost(t, "tcp"), newLoopbackHost(t, "tcp")
	f, _ := New(fh, NewMemStore(), Options{DownloadRate: 256 << 10})
	p, _ := New(ph, src, Options{})
	defer p.Close()
	connect(t, fh, ph)
	done := make(chan error, 1)
	go func() {
		_, err := f.Fetch(context.Background(), root, []peer.ID{ph.ID()})
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	f.Close()
	if err := <-done; err == nil {
		t.Fatal("fetch finished despite Close")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v", d)
	}
	if _, err := f.Fetch(context.Background(), root, []peer.ID{ph.ID()}); !errors.Is(err, ErrClosed) {
		t.Fatalf("fetch after close = %v", err)
	}
}

// TestFetchMocknet fetches over an in-memory network with link latency.
func TestFetchMocknet(t *testing.T) {
	mn := mocknet.New()
	defer mn.Close()
	mn.SetLinkDefaults(mocknet.LinkOptions{Latency: 10 * time.Millisecond})
	data := randBytes(9, 1<<20)
	src := NewMemStore()
	root, _ := Put(src, data, 64<<10)
	mk := func() host.Host {
		h, err := mn.GenPeer()
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	var stores []Store
	for range 3 {
		stores = append(stores, src)
	}
	n := &testNet{store: newCheckedStore(), log: &testlog.Recorder{}}
	fh := mk()
	var err error
	n.fetcher, err = New(fh, n.store, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.fetcher.Close()
	for _, s := range stores {
		ph := mk()
		x, _ := New(ph, s, Options{})
		defer x.Close()
		n.ids = append(n.ids, ph.ID())
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	if err := mn.ConnectAllButSelf(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	res, err := n.fetcher.Fetch(ctx, root, n.ids)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := ReadAll(n.store, root)
	if !bytes.Equal(got, data) {
		t.Fatal("fetched blob differs")
	}
	t.Logf("1 MiB over mocknet (10 ms links) from 3 providers in %v: %v", time.Since(start).Round(time.Millisecond), fmt.Sprint(res.BytesFrom))
}

func TestFetchRefusesBlobsOverTheSizeCap(t *testing.T) {
	src := NewMemStore()
	root, _ := Put(src, randBytes(12, 3*testChunk), testChunk)
	n := newTestNet(t, tcpHost(t), Options{MaxBlobSize: 2 * testChunk}, src)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := n.fetcher.Fetch(ctx, root, n.ids)
	if err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("fetch over the cap = %v", err)
	}
	if n.store.Len() != 0 {
		t.Fatalf("%d objects stored for a refused blob", n.store.Len())
	}
}

func TestOptionsValidate(t *testing.T) {
	if err := (Options{}).Validate(); err != nil {
		t.Fatal(err)
	}
	for name, o := range map[string]Options{
		"negative size":  {MaxBlobSize: -1},
		"per peer > all": {ServeConcurrency: 2, ServePerPeer: 3},
		"negative rate":  {UploadRate: -5},
		"tiny timeout":   {RequestTimeout: time.Microsecond},
		"negative fetch": {FetchPerPeer: -1},
		"negative fails": {MaxFailures: -1},
		"negative mem":   {FetchMemory: -1},
	} {
		if err := o.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestFetchObject fetches one object by its CID, verified, and refuses a
// CID that no provider holds.
func TestFetchObject(t *testing.T) {
	data := randBytes(2, 300<<10)
	src := NewMemStore()
	c := content.Sum(data)
	if err := src.Put(c, data); err != nil {
		t.Fatal(err)
	}
	n := newTestNet(t, tcpHost(t), Options{}, src)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := n.fetcher.FetchObject(ctx, c, n.ids)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("FetchObject: %v", err)
	}
	if !n.store.Has(c) {
		t.Fatal("fetched object not stored")
	}
	if _, err := n.fetcher.FetchObject(ctx, content.Sum([]byte("nobody has this")), n.ids); err == nil {
		t.Fatal("fetched an object nobody holds")
	}
}

// countingStore counts the objects peers ask a provider for and, once it
// has served chunks chunks (if chunks >= 0), serves no more but root, as
// if the provider went away mid-fetch.
type countingStore struct {
	Store
	root   cid.Cid
	mu     sync.Mutex
	gets   map[cid.Cid]int
	chunks int
}

func (s *countingStore) Get(c cid.Cid) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gets[c]++
	if s.chunks >= 0 && !c.Equals(s.root) {
		if s.chunks == 0 {
			return nil, ErrNotFound
		}
		s.chunks--
	}
	return s.Store.Get(c)
}

// TestFetchResumesMissingOnly cuts a fetch short (the provider serves 10
// chunks, then no more), then fetches again into the same store: the
// provider is asked for the chunks still missing, each once, and not for
// the manifest.
func TestFetchResumesMissingOnly(t *testing.T) {
	data := randBytes(21, 64*testChunk+5)
	full := NewMemStore()
	root, err := Put(full, data, testChunk)
	if err != nil {
		t.Fatal(err)
	}
	src := &countingStore{Store: full, root: root, gets: map[cid.Cid]int{}, chunks: 10}
	n := newTestNet(t, tcpHost(t), Options{}, src)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	dst := NewMemStore()
	if _, err := n.fetcher.FetchInto(ctx, dst, root, n.ids); err == nil {
		t.Fatal("fetch from a provider that stops serving succeeded")
	}
	m, err := LoadManifest(dst, root)
	if err != nil {
		t.Fatalf("manifest not kept: %v", err)
	}
	missing := map[cid.Cid]bool{}
	for _, c := range m.Chunks {
		if !dst.Has(c) {
			missing[c] = true
		}
	}
	if len(missing) != len(m.Chunks)-10 {
		t.Fatalf("%d of %d chunks missing after the cut, want %d", len(missing), len(m.Chunks), len(m.Chunks)-10)
	}
	src.mu.Lock()
	src.gets, src.chunks = map[cid.Cid]int{}, -1
	src.mu.Unlock()

	res, err := n.fetcher.FetchInto(ctx, dst, root, n.ids)
	if err != nil {
		t.Fatal(err)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	for c, k := range src.gets {
		if !missing[c] || k != 1 {
			t.Errorf("resumed fetch asked for %s %d times (missing: %v)", c, k, missing[c])
		}
	}
	if len(src.gets) != len(missing) || res.Fetched != len(missing) {
		t.Fatalf("resumed fetch asked for %d objects, fetched %d; %d were missing", len(src.gets), res.Fetched, len(missing))
	}
	if got, _ := ReadAll(dst, root); !bytes.Equal(got, data) {
		t.Fatal("fetched blob differs")
	}
}

// slowStore is a MemStore whose PutVerified takes a while, and which
// records the most chunks it was handed at once: chunks a fetch has
// received and not yet stored.
type slowStore struct {
	*MemStore
	delay time.Duration

	mu         sync.Mutex
	putting    int
	maxPutting int
}

func (s *slowStore) PutVerified(c cid.Cid, data []byte) error {
	s.mu.Lock()
	s.putting++
	s.maxPutting = max(s.maxPutting, s.putting)
	s.mu.Unlock()
	time.Sleep(s.delay)
	s.mu.Lock()
	s.putting--
	s.mu.Unlock()
	return s.MemStore.PutVerified(c, data)
}

// TestFetchMemoryBudget fetches from four providers, four requests each,
// into a store that is slow to take chunks: with FetchMemory at two
// chunks, no more than two chunks are ever waiting for the store (sixteen
// would be without the budget), and the fetch completes.
func TestFetchMemoryBudget(t *testing.T) {
	const chunk = 64 << 10
	data := randBytes(31, 48*chunk)
	src := NewMemStore()
	root, err := Put(src, data, chunk)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		memory  int64
		atMost  int
		atLeast int
	}{
		{memory: 2 * chunk, atMost: 2, atLeast: 1},
		{memory: 3*chunk - 1, atMost: 2, atLeast: 1},
		{memory: chunk / 2, atMost: 1, atLeast: 1}, // chunks larger than the budget go one at a time
		{memory: 64 * chunk, atMost: 16, atLeast: 2},
	} {
		t.Run(fmt.Sprint(tc.memory), func(t *testing.T) {
			n := newTestNet(t, tcpHost(t), Options{FetchMemory: tc.memory, FetchPerPeer: 4}, src, src, src, src)
			dst := &slowStore{MemStore: NewMemStore(), delay: 5 * time.Millisecond}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := n.fetcher.FetchInto(ctx, dst, root, n.ids); err != nil {
				t.Fatal(err)
			}
			if got, err := ReadAll(dst, root); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("fetched blob differs (%v)", err)
			}
			dst.mu.Lock()
			defer dst.mu.Unlock()
			if dst.maxPutting > tc.atMost || dst.maxPutting < tc.atLeast {
				t.Fatalf("FetchMemory %d: up to %d chunks waiting for the store at once, want %d to %d", tc.memory, dst.maxPutting, tc.atLeast, tc.atMost)
			}
		})
	}
}

// gateStore is a MemStore that takes limit chunks, then holds every
// further PutVerified until open is closed: a fetch stopped half way.
type gateStore struct {
	*MemStore
	limit   int
	reached chan struct{} // closed once limit chunks are stored
	open    chan struct{}

	mu     sync.Mutex
	stored int
}

func (s *gateStore) PutVerified(c cid.Cid, data []byte) error {
	s.mu.Lock()
	full := s.stored >= s.limit
	s.mu.Unlock()
	if full {
		<-s.open
	}
	if err := s.MemStore.PutVerified(c, data); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stored++; s.stored == s.limit {
		close(s.reached)
	}
	return nil
}

// TestPartialHolderServes is swarming: B, half way through fetching a
// blob from A, already serves the chunks it has, and C fetches the whole
// blob from B and E, each of which holds only part of it (E the chunks B
// lacks), drawing from both.
func TestPartialHolderServes(t *testing.T) {
	data := randBytes(41, 32*testChunk)
	full := NewMemStore()
	root, err := Put(full, data, testChunk)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := LoadManifest(full, root)
	ha, hb, hc, he := newLoopbackHost(t, "tcp"), newLoopbackHost(t, "tcp"), newLoopbackHost(t, "tcp"), newLoopbackHost(t, "tcp")
	start := func(h host.Host, s Store) *Exchange {
		x, err := New(h, s, Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { x.Close() })
		return x
	}
	start(ha, full)
	gate := &gateStore{MemStore: NewMemStore(), limit: 16, reached: make(chan struct{}), open: make(chan struct{})}
	b := start(hb, gate)
	c := start(hc, NewMemStore())
	connect(t, hb, ha)
	connect(t, hc, hb)
	connect(t, hc, he)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bDone := make(chan error, 1)
	go func() {
		_, err := b.Fetch(ctx, root, []peer.ID{ha.ID()})
		bDone <- err
	}()
	select {
	case <-gate.reached:
	case err := <-bDone:
		t.Fatalf("B's fetch ended before it was half way: %v", err)
	case <-ctx.Done():
		t.Fatal("B never got half the chunks")
	}
	bHas := make(map[cid.Cid]bool)
	for _, ch := range m.Chunks {
		if gate.Has(ch) {
			bHas[ch] = true
		}
	}
	if len(bHas) != gate.limit || !gate.Has(root) {
		t.Fatalf("B holds %d chunks (manifest: %v), want %d and the manifest", len(bHas), gate.Has(root), gate.limit)
	}
	start(he, &subsetStore{Store: full, keep: func(ch cid.Cid) bool { return !bHas[ch] }})

	res, err := c.Fetch(ctx, root, []peer.ID{hb.ID(), he.ID()})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ReadAll(c.store, root); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("C's blob differs (%v)", err)
	}
	want := int64(len(bHas) * testChunk)
	if got := res.BytesFrom[hb.ID()]; got < want {
		t.Fatalf("C got %d bytes from the partial holder B, want its %d chunks' %d", got, len(bHas), want)
	}
	if got := res.BytesFrom[he.ID()]; got != int64(len(data))-want {
		t.Fatalf("C got %d bytes from E, want the rest, %d", got, int64(len(data))-want)
	}
	select {
	case err := <-bDone:
		t.Fatalf("B's fetch ended while held half way: %v", err)
	default:
	}
	close(gate.open)
	if err := <-bDone; err != nil {
		t.Fatalf("B's fetch: %v", err)
	}
}
