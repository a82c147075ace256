package round

import _ "embed"

// Template is a commented round spec to copy and edit: every field, with
// its default or an example value (testdata/round.yaml).
//
//go:embed testdata/round.yaml
var Template string
