// Command shoal is the one binary of the shoal volunteer-compute network:
// it trains models locally, runs volunteer nodes and researchers' rounds,
// and simulates networks of volunteers.
package main

import "os"

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
