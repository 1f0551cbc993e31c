package worker

import (
	"context"
	"errors"

	"github.com/geoexport/exporter/internal/job"
)

// deleteParts removes a job's part packages (job.PartsPrefix): finalize
// once they are merged or the job no longer runs, failure handling when
// the job fails.
func deleteParts(ctx context.Context, files Files, j job.Job) error {
	var errs []error
	for info, err := range files.List(ctx, job.PartsPrefix(j.ID)) {
		if err != nil {
			return err
		}
		if err := files.Delete(ctx, info.Key); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
