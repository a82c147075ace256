package codec

// bitWriter packs fields of up to 32 bits into bytes, least significant
// bit first: bit i of the stream is bit i%8 of byte i/8.
type bitWriter struct {
	b   []byte
	acc uint64
	n   uint
}

func (w *bitWriter) put(v uint64, width uint) {
	w.acc |= v << w.n
	w.n += width
	for w.n >= 8 {
		w.b[0] = byte(w.acc)
		w.b = w.b[1:]
		w.acc >>= 8
		w.n -= 8
	}
}

// flush writes the last partial byte, its unused high bits zero.
func (w *bitWriter) flush() {
	if w.n > 0 {
		w.b[0] = byte(w.acc)
		w.b = w.b[1:]
		w.acc, w.n = 0, 0
	}
}

// bitReader reads what bitWriter wrote. The caller sizes b so that reads
// never run past it.
type bitReader struct {
	b   []byte
	acc uint64
	n   uint
}

func (r *bitReader) get(width uint) uint64 {
	for r.n < width {
		r.acc |= uint64(r.b[0]) << r.n
		r.b = r.b[1:]
		r.n += 8
	}
	v := r.acc & (1<<width - 1)
	r.acc >>= width
	r.n -= width
	return v
}

// padding returns the bits left in the current byte; a canonical stream
// has them zero.
func (r *bitReader) padding() uint64 { return r.acc }
