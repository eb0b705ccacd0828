// Package testutil holds the helpers the tests of several packages share,
// one file a job. Only _test.go files import it; it imports nothing of
// this module, so that the tests of every package (ipc, agent, ui and the
// rest, internal tests included) can use it without an import cycle.
package testutil
