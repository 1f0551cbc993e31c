package setting_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/geoexport/exporter/internal/setting"
)

func TestProblems(t *testing.T) {
	t.Parallel()
	a := setting.Error(errors.New("worker: concurrency must be at least 1"), "Concurrency")
	b := errors.New("worker: something else")
	c := setting.Error(errors.New("worker: fetchers and encoders"), "Fetchers", "Encoders")
	err := fmt.Errorf("config: %w", errors.Join(a, errors.Join(b, c)))
	got := setting.Problems(err)
	if len(got) != 3 || !errors.Is(got[0], a) || !errors.Is(got[1], b) || !errors.Is(got[2], c) {
		t.Fatalf("Problems = %v, want the three problems in order", got)
	}
	if fe := new(setting.FieldError); !errors.As(got[2], &fe) || len(fe.Fields) != 2 || fe.Error() != "worker: fetchers and encoders" {
		t.Errorf("FieldError = %+v, want fields Fetchers and Encoders and the message unchanged", fe)
	}
	if setting.Problems(nil) != nil {
		t.Error("Problems(nil) is not nil")
	}
	if got := setting.Problems(b); len(got) != 1 || !errors.Is(got[0], b) {
		t.Errorf("Problems of a plain error = %v", got)
	}
}
