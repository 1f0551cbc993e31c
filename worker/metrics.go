package worker

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/geoexport/exporter/internal/catalog"
	"github.com/geoexport/exporter/internal/job"
)

type metrics struct {
	tasks          *prometheus.CounterVec
	taskDuration   *prometheus.HistogramVec
	tiles          *prometheus.CounterVec
	tileBytes      *prometheus.CounterVec
	jobsFinished   *prometheus.CounterVec
	exportDuration *prometheus.HistogramVec
	rescued        prometheus.Counter
	callbacks      *prometheus.CounterVec
	encode         *prometheus.HistogramVec
	sourceDuration *prometheus.HistogramVec
	sourceErrors   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "exporter_worker_tasks_total", Help: "Tasks processed by type and outcome: success, retry, failed, cancelled.",
		}, []string{"task_type", "outcome"}),
		taskDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "exporter_worker_task_duration_seconds", Help: "Task run time by type.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10),
		}, []string{"task_type"}),
		tiles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "exporter_worker_tiles_written_total", Help: "Tiles written into packages by layer (product id) and tile format.",
		}, []string{"layer", "format"}),
		tileBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "exporter_worker_tile_bytes_written_total", Help: "Encoded tile bytes written into packages by layer (product id) and tile format.",
		}, []string{"layer", "format"}),
		sourceDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "exporter_worker_source_request_duration_seconds", Help: "Time to get one tile from a source, by source kind.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 3, 10),
		}, []string{"kind"}),
		sourceErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "exporter_worker_source_errors_total", Help: "Tiles a source failed to give (no-data answers excluded), by source kind.",
		}, []string{"kind"}),
		rescued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "exporter_worker_rescued_tasks_total", Help: "Render tasks of dead workers queued again before asynq's recoverer would have.",
		}),
		jobsFinished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "exporter_jobs_finished_total", Help: "Jobs that ended, by final status.",
		}, []string{"status"}),
		exportDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "exporter_jobs_export_duration_seconds",
			Help: "Time from the request that created an export to its completion, by the queue its priority picks.",
			// 1 s to about 18 h.
			Buckets: prometheus.ExponentialBuckets(1, 2, 17),
		}, []string{"queue"}),
		callbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "exporter_worker_callbacks_total", Help: "Callback delivery attempts by outcome: delivered, retry, failed (given up).",
		}, []string{"outcome"}),
		encode: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "exporter_worker_tile_encode_duration_seconds", Help: "Time to encode one tile, by format.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 10),
		}, []string{"format"}),
	}
	for _, c := range []prometheus.Collector{m.tasks, m.taskDuration, m.tiles, m.tileBytes, m.jobsFinished, m.exportDuration, m.rescued, m.callbacks, m.encode, m.sourceDuration, m.sourceErrors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register worker metrics: %w", err)
		}
	}
	// Every known label value exists from the start, so rates and alerts
	// over them have series before the first event.
	for _, o := range []string{"delivered", "retry", "failed"} {
		m.callbacks.WithLabelValues(o)
	}
	for _, q := range job.Queues {
		m.exportDuration.WithLabelValues(q)
	}
	for _, k := range catalog.SourceKinds {
		m.sourceErrors.WithLabelValues(k)
	}
	return m, nil
}
