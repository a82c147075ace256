// Package archtest holds the test that enforces the module's dependency
// direction (see its test file); it has no other code.
package archtest
