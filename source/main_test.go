package source_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a test leaves goroutines behind: a request,
// a metatile fetch or a connection that outlives its source.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
