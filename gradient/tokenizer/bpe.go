// Package tokenizer turns text into token IDs and back: byte-level (one
// token per byte, the zoo's default) and GPT-2's byte-level BPE, loaded
// from its standard vocabulary files (encoder.json and vocab.bpe).
// Encoding is deterministic and depends only on the text and the files, so
// every peer of a round tokenizes a dataset to the same IDs; a tokenizer
// is named by the CID of its canonical encoding (Tokenizer.ID).
package tokenizer

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/checkpoint/content"
)

// Limits on what Load accepts, so that hostile files cost bounded memory.
const (
	MaxVocab  = 1 << 20
	MaxMerges = 1 << 20
	maxToken  = 1 << 10 // bytes of one vocabulary entry
)

// BPE is GPT-2's byte-level byte-pair encoding: text is split into words
// by GPT-2's pattern, each word's bytes are mapped to printable characters
// and merged pair by pair, the pair of lowest rank first, and each
// resulting symbol is looked up in the vocabulary.
type BPE struct {
	vocab  map[string]int32 // symbol → ID
	tokens []string         // ID → symbol ("" for an ID not in use)
	ranks  map[[2]string]int
	merges [][2]string

	mu    sync.Mutex // guards cache: a BPE is safe for concurrent use
	cache map[string][]int32
}

// byteRune maps each byte to the printable character GPT-2's files spell
// it with, and runeByte back.
var byteRune, runeByte = byteMaps()

func byteMaps() ([256]rune, map[rune]byte) {
	var br [256]rune
	rb := make(map[rune]byte, 256)
	printable := func(b int) bool {
		return b >= '!' && b <= '~' || b >= 0xa1 && b <= 0xac || b >= 0xae && b <= 0xff
	}
	n := 0
	for b := range 256 {
		r := rune(b)
		if !printable(b) {
			r = rune(256 + n)
			n++
		}
		br[b], rb[r] = r, byte(b)
	}
	return br, rb
}

// Load reads GPT-2's vocabulary (encoder.json: a JSON object from symbol
// to ID) and merges (vocab.bpe: an optional "#version" line, then one
// pair per line, in rank order). Every symbol a merge makes must be in the
// vocabulary, and every byte's symbol too, so that any text encodes.
func Load(encoder, merges io.Reader) (*BPE, error) {
	dec := json.NewDecoder(io.LimitReader(encoder, 64<<20))
	var vocab map[string]int64
	if err := dec.Decode(&vocab); err != nil {
		return nil, fmt.Errorf("encoder.json: %v", err)
	}
	if len(vocab) == 0 || len(vocab) > MaxVocab {
		return nil, fmt.Errorf("encoder.json: %d entries, want 1 to %d", len(vocab), MaxVocab)
	}
	t := &BPE{vocab: make(map[string]int32, len(vocab)), ranks: map[[2]string]int{}, cache: map[string][]int32{}}
	var maxID int64 = -1
	for s, id := range vocab {
		if id < 0 || id >= MaxVocab {
			return nil, fmt.Errorf("encoder.json: %q has ID %d, outside [0, %d)", s, id, MaxVocab)
		}
		if len(s) == 0 || len(s) > maxToken || !utf8.ValidString(s) {
			return nil, fmt.Errorf("encoder.json: entry %q is empty, too long or not UTF-8", s)
		}
		t.vocab[s] = int32(id)
		maxID = max(maxID, id)
	}
	t.tokens = make([]string, maxID+1)
	for s, id := range t.vocab {
		if t.tokens[id] != "" {
			return nil, fmt.Errorf("encoder.json: ID %d is given to both %q and %q", id, t.tokens[id], s)
		}
		t.tokens[id] = s
	}
	for b := range 256 {
		if _, ok := t.vocab[string(byteRune[b])]; !ok {
			return nil, fmt.Errorf("encoder.json: no entry for byte %#02x (%q): some text would not encode", b, string(byteRune[b]))
		}
	}
	sc := bufio.NewScanner(io.LimitReader(merges, 64<<20))
	sc.Buffer(make([]byte, 4096), 4096)
	for line := 1; sc.Scan(); line++ {
		l := sc.Text()
		if line == 1 && strings.HasPrefix(l, "#version") || strings.TrimSpace(l) == "" {
			continue
		}
		a, b, ok := strings.Cut(l, " ")
		if !ok || a == "" || b == "" || strings.Contains(b, " ") {
			return nil, fmt.Errorf("vocab.bpe:%d: %q is not two symbols separated by a space", line, l)
		}
		p := [2]string{a, b}
		if _, dup := t.ranks[p]; dup {
			return nil, fmt.Errorf("vocab.bpe:%d: the pair %q %q is listed twice", line, a, b)
		}
		if _, ok := t.vocab[a+b]; !ok {
			return nil, fmt.Errorf("vocab.bpe:%d: the merge %q %q makes %q, which encoder.json lacks", line, a, b, a+b)
		}
		if len(t.merges) == MaxMerges {
			return nil, fmt.Errorf("vocab.bpe: more than %d merges", MaxMerges)
		}
		t.ranks[p] = len(t.merges)
		t.merges = append(t.merges, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("vocab.bpe: %v", err)
	}
	return t, nil
}

// VocabSize returns the number of token IDs (one more than the largest).
func (t *BPE) VocabSize() int { return len(t.tokens) }

// Encode returns the token IDs of text.
func (t *BPE) Encode(text []byte) []int32 {
	var out []int32
	for _, w := range Words(text) {
		out = append(out, t.word(w)...)
	}
	return out
}

// word encodes one word of the pattern.
func (t *BPE) word(w []byte) []int32 {
	t.mu.Lock()
	ids, ok := t.cache[string(w)]
	t.mu.Unlock()
	if ok {
		return ids
	}
	syms := make([]string, len(w))
	for i, b := range w {
		syms[i] = string(byteRune[b])
	}
	for len(syms) > 1 {
		best := -1
		for i := range len(syms) - 1 {
			if r, ok := t.ranks[[2]string{syms[i], syms[i+1]}]; ok && (best < 0 || r < best) {
				best = r
			}
		}
		if best < 0 {
			break
		}
		// Merge every occurrence of the best pair, left to right.
		p := t.merges[best]
		merged := syms[:0:0]
		for i := 0; i < len(syms); i++ {
			if i+1 < len(syms) && syms[i] == p[0] && syms[i+1] == p[1] {
				merged = append(merged, p[0]+p[1])
				i++
			} else {
				merged = append(merged, syms[i])
			}
		}
		syms = merged
	}
	ids = make([]int32, len(syms))
	for i, s := range syms {
		ids[i] = t.vocab[s] // present: bytes and merge results are checked by Load
	}
	t.mu.Lock()
	if len(t.cache) < 1<<16 {
		t.cache[string(w)] = ids
	}
	t.mu.Unlock()
	return ids
}

// Decode returns the text of token IDs; an ID outside the vocabulary is
// an error.
func (t *BPE) Decode(ids []int32) ([]byte, error) {
	var out []byte
	for i, id := range ids {
		if id < 0 || int(id) >= len(t.tokens) || t.tokens[id] == "" {
			return nil, fmt.Errorf("token %d (at %d) is not in the vocabulary", id, i)
		}
		for _, r := range t.tokens[id] {
			b, ok := runeByte[r]
			if !ok {
				return nil, fmt.Errorf("token %d (%q) holds %q, which stands for no byte", id, t.tokens[id], r)
			}
			out = append(out, b)
		}
	}
	return out, nil
}

// Marshal returns the tokenizer's canonical encoding: "SHOALBPE" and the
// version byte 1, the vocabulary size, each ID's symbol (length-prefixed,
// empty for an unused ID), the number of merges and each merge's two
// symbols, integers as little-endian uint32. The same files always give
// the same bytes, whatever their formatting or key order.
func (t *BPE) Marshal() []byte {
	b := []byte("SHOALBPE\x01")
	str := func(s string) {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(t.tokens)))
	for _, s := range t.tokens {
		str(s)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(t.merges)))
	for _, m := range t.merges {
		str(m[0])
		str(m[1])
	}
	return b
}

// ID returns the CID that names the tokenizer: content.ID of Marshal.
func (t *BPE) ID() cid.Cid { return content.ID(t.Marshal()) }

// Words splits text into GPT-2's words: the pattern
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// tried in that order at each position, as GPT-2's encoder does. Invalid
// UTF-8 counts as neither letter, number nor space.
func Words(text []byte) [][]byte {
	var out [][]byte
	for i := 0; i < len(text); {
		n := wordLen(text[i:])
		out = append(out, text[i:i+n])
		i += n
	}
	return out
}

type class int

const (
	other class = iota
	letter
	number
	space
)

func classAt(b []byte) (class, int) {
	r, n := utf8.DecodeRune(b)
	switch {
	case r == utf8.RuneError && n <= 1:
		return other, max(n, 1)
	case unicode.IsLetter(r):
		return letter, n
	case unicode.IsNumber(r):
		return number, n
	case unicode.IsSpace(r):
		return space, n
	}
	return other, n
}

// run returns the length of the run of class c at the start of b.
func run(b []byte, c class) int {
	n := 0
	for n < len(b) {
		k, w := classAt(b[n:])
		if k != c {
			break
		}
		n += w
	}
	return n
}

var contractions = []string{"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"}

// wordLen returns the length of the word at the start of b (not empty).
func wordLen(b []byte) int {
	for _, c := range contractions {
		if bytes.HasPrefix(b, []byte(c)) {
			return len(c)
		}
	}
	lead := 0
	if b[0] == ' ' && len(b) > 1 {
		lead = 1
	}
	for _, c := range []class{letter, number, other} {
		// " ?X+": with the space if X follows it, else without.
		for _, l := range []int{lead, 0} {
			if n := run(b[l:], c); n > 0 {
				return l + n
			}
			if lead == 0 {
				break
			}
		}
	}
	// \s+(?!\S), else \s+.
	n := run(b, space)
	if n == 0 {
		_, w := classAt(b)
		return w // unreachable: every class is covered above
	}
	if n == len(b) {
		return n
	}
	// Followed by a non-space: leave its last space to the next word,
	// unless that would leave nothing.
	_, last := utf8.DecodeLastRune(b[:n])
	if n-last > 0 {
		return n - last
	}
	return n
}

// Unmarshal decodes a tokenizer's canonical encoding (see Marshal), as a
// peer fetches it by CID: it accepts exactly what Marshal produces for a
// tokenizer Load accepts, within the same bounds.
func Unmarshal(b []byte) (*BPE, error) {
	const magic = "SHOALBPE\x01"
	if !bytes.HasPrefix(b, []byte(magic)) {
		return nil, fmt.Errorf("tokenizer: not a tokenizer encoding (version %q)", b[:min(len(b), len(magic))])
	}
	r := b[len(magic):]
	u32 := func(what string) (int, error) {
		if len(r) < 4 {
			return 0, fmt.Errorf("tokenizer: truncated at %s", what)
		}
		v := binary.LittleEndian.Uint32(r)
		r = r[4:]
		return int(v), nil
	}
	str := func(what string) (string, error) {
		n, err := u32(what)
		if err != nil {
			return "", err
		}
		if n > maxToken || n > len(r) {
			return "", fmt.Errorf("tokenizer: %s of %d bytes", what, n)
		}
		s := string(r[:n])
		r = r[n:]
		return s, nil
	}
	nv, err := u32("the vocabulary size")
	if err != nil {
		return nil, err
	}
	if nv < 1 || nv > MaxVocab || nv > len(r)/4 {
		return nil, fmt.Errorf("tokenizer: a vocabulary of %d tokens", nv)
	}
	vocab := map[string]int64{}
	for id := range nv {
		s, err := str(fmt.Sprintf("token %d", id))
		if err != nil {
			return nil, err
		}
		if s != "" {
			vocab[s] = int64(id)
		}
	}
	nm, err := u32("the number of merges")
	if err != nil {
		return nil, err
	}
	if nm > MaxMerges || nm > len(r)/8 {
		return nil, fmt.Errorf("tokenizer: %d merges", nm)
	}
	var merges strings.Builder
	for i := range nm {
		a, err := str(fmt.Sprintf("merge %d", i))
		if err != nil {
			return nil, err
		}
		c, err := str(fmt.Sprintf("merge %d", i))
		if err != nil {
			return nil, err
		}
		if strings.ContainsAny(a+c, " \n") {
			return nil, fmt.Errorf("tokenizer: merge %d holds a space or newline", i)
		}
		merges.WriteString(a + " " + c + "\n")
	}
	if len(r) != 0 {
		return nil, fmt.Errorf("tokenizer: %d bytes after the merges", len(r))
	}
	js, err := json.Marshal(vocab)
	if err != nil {
		return nil, err
	}
	t, err := Load(bytes.NewReader(js), strings.NewReader(merges.String()))
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if !bytes.Equal(t.Marshal(), b) {
		return nil, errors.New("tokenizer: not the canonical encoding of the tokenizer it describes")
	}
	return t, nil
}
