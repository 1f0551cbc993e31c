package worker

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	tasks        *prometheus.CounterVec
	taskDuration *prometheus.HistogramVec
	tiles        *prometheus.CounterVec
	tileBytes    *prometheus.CounterVec
	jobsFinished *prometheus.CounterVec
	callbacks    *prometheus.CounterVec
	encode       *prometheus.HistogramVec
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
			Name: "exporter_worker_tiles_written_total", Help: "Tiles written into packages by tile format.",
		}, []string{"format"}),
		tileBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "exporter_worker_tile_bytes_written_total", Help: "Encoded tile bytes written into packages by tile format.",
		}, []string{"format"}),
		jobsFinished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "exporter_jobs_finished_total", Help: "Jobs that ended, by final status.",
		}, []string{"status"}),
		callbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "exporter_worker_callbacks_total", Help: "Callback deliveries by outcome: delivered, retry, rejected.",
		}, []string{"outcome"}),
		encode: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "exporter_worker_tile_encode_duration_seconds", Help: "Time to encode one tile, by format.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 10),
		}, []string{"format"}),
	}
	for _, c := range []prometheus.Collector{m.tasks, m.taskDuration, m.tiles, m.tileBytes, m.jobsFinished, m.callbacks, m.encode} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register worker metrics: %w", err)
		}
	}
	return m, nil
}
