package main

import "github.com/shoal-network/shoal/tensor"

func kernelPath() string { return tensor.KernelPath() }
