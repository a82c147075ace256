package tensor

import "github.com/shoal-network/shoal/tensor/internal/vec"

// AdamWUpdate applies one AdamW step to the parameters w with gradients g
// and moment estimates m and v, element by element:
//
//	gj = g*gscale
//	m  = b1*m + (1-b1)*gj
//	v  = b2*v + ((1-b2)*gj)*gj
//	w  = (w - decay*w) - lr*((m/c1) / (sqrt(v/c2) + eps))
//
// every product rounded to float32 before it is added, (1-b1) and (1-b2)
// computed once in float32, and sqrt correctly rounded; c1 and c2 are the
// bias corrections 1-b1^t and 1-b2^t.
func AdamWUpdate(w, g, m, v []float32, gscale, b1, b2, c1, c2, lr, decay, eps float32) {
	vec.AdamW(w, g, m, v, gscale, b1, b2, c1, c2, lr, decay, eps)
}
