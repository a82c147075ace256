package codec_test

import (
	"fmt"

	"github.com/shoal-network/shoal/gradient/codec"
)

func Example() {
	c, err := codec.Parse("fp16")
	if err != nil {
		panic(err)
	}
	b, err := c.Encode([]codec.Tensor{{Name: "w", Shape: []int{2}, Data: []float32{1, -2}}}, nil)
	if err != nil {
		panic(err)
	}
	fmt.Printf("% x\n", b)
	// Output: 01 02 01 00 00 00 01 00 77 01 02 00 00 00 00 3c 00 c0
}

// Error feedback: what topk leaves out stays in the residual and is sent
// in a later step.
func Example_errorFeedback() {
	c, _ := codec.Parse("topk:chunk=4,k=1,values=fp16")
	residual := [][]float32{make([]float32, 4)}
	delta := []codec.Tensor{{Name: "w", Shape: []int{4}, Data: []float32{0.5, -3, 1, 0.25}}}
	for step := range 3 {
		b, _ := c.Encode(delta, residual)
		out, _ := c.Decode(b, codec.Limits{})
		fmt.Println(step, out[0].Data, residual[0])
		delta[0].Data = []float32{0, 0, 0, 0}
	}
	// Output:
	// 0 [0 -3 0 0] [0.5 0 1 0.25]
	// 1 [0 0 1 0] [0.5 0 0 0.25]
	// 2 [0.5 0 0 0] [0 0 0 0.25]
}
