package storage_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/geoexport/exporter/internal/testenv"
)

// TestMain stops the shared MinIO server after the tests and then checks
// that no goroutine leaked: closed Objects and S3.Close must release
// everything.
func TestMain(m *testing.M) {
	code := testenv.Run(m)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
