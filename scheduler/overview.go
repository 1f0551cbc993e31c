package scheduler

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"

	"github.com/geoexport/exporter/internal/logattr"
)

// overviewTimeout bounds the Redis read of one scrape, well inside
// Prometheus's default scrape timeout of 10 s.
const overviewTimeout = 5 * time.Second

// overviewCollector reports, at scrape time, what only the shared state
// in Redis knows right for the whole service: the exports running now,
// the storage the quota counts and the last successful maintenance runs.
// Counters of one process cannot give these (they reset with it, and each
// replica sees only its own tasks), so the scheduler, which has one
// process or a few equal replicas, reads them for all; queries take max
// over its replicas.
type overviewCollector struct {
	s                                *Scheduler
	running, stored, reserved, quota *prometheus.Desc
	lastSuccess, interval, up        *prometheus.Desc
}

func newOverviewCollector(s *Scheduler) *overviewCollector {
	return &overviewCollector{
		s: s,
		running: prometheus.NewDesc("exporter_jobs_running",
			"Exports In-Progress now, in the whole service (read from Redis).", nil, nil),
		stored: prometheus.NewDesc("exporter_storage_stored_bytes",
			"Bytes of stored packages, as the quota counts them (read from Redis).", nil, nil),
		reserved: prometheus.NewDesc("exporter_storage_reserved_bytes",
			"Estimated bytes of unfinished exports, which the quota counts too (read from Redis).", nil, nil),
		quota: prometheus.NewDesc("exporter_storage_quota_bytes",
			"The storage quota (EXPORTER_JOBS_QUOTA_BYTES); 0 is none.", nil, nil),
		lastSuccess: prometheus.NewDesc("exporter_scheduler_last_success_timestamp_seconds",
			"When a run of the maintenance task type last succeeded, on any replica (read from Redis); absent until one has.", []string{"task_type"}, nil),
		interval: prometheus.NewDesc("exporter_scheduler_interval_seconds",
			"Time between the next two slots of the maintenance task type's schedule.", []string{"task_type"}, nil),
		up: prometheus.NewDesc("exporter_scheduler_overview_up",
			"1 if the last scrape read the shared state from Redis, 0 if it failed (the gauges read from Redis are then absent).", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *overviewCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.running, c.stored, c.reserved, c.quota, c.lastSuccess, c.interval, c.up} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. A failed read of Redis leaves
// out the gauges read from it, rather than failing the whole scrape.
func (c *overviewCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.s.deps.Now()
	ch <- prometheus.MustNewConstMetric(c.quota, prometheus.GaugeValue, float64(c.s.deps.QuotaBytes))
	for _, e := range c.s.entries {
		ch <- prometheus.MustNewConstMetric(c.interval, prometheus.GaugeValue, period(e.schedule, now).Seconds(), e.typ)
	}
	// client_golang gives Collect no context: the read has its own bound.
	ctx, cancel := context.WithTimeout(context.Background(), overviewTimeout)
	defer cancel()
	o, err := c.s.deps.Jobs.Overview(ctx)
	if err != nil {
		c.s.log.WarnContext(ctx, "read overview for metrics", logattr.Error, err)
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(c.running, prometheus.GaugeValue, float64(o.Running))
	ch <- prometheus.MustNewConstMetric(c.stored, prometheus.GaugeValue, float64(o.Stored))
	ch <- prometheus.MustNewConstMetric(c.reserved, prometheus.GaugeValue, float64(o.Reserved))
	for _, e := range c.s.entries {
		if at, ok := o.MaintenanceSucceeded[e.typ]; ok {
			ch <- prometheus.MustNewConstMetric(c.lastSuccess, prometheus.GaugeValue, float64(at.UnixMilli())/1000, e.typ)
		}
	}
}

// period is the time between the next two slots of sched after now: the
// constant interval of "@every d", and for a cron spec the gap that comes
// next (a cron's gaps may differ: "0 9,17 * * *").
func period(sched cron.Schedule, now time.Time) time.Duration {
	if every, ok := sched.(cron.ConstantDelaySchedule); ok {
		return every.Delay
	}
	next := sched.Next(now)
	return sched.Next(next).Sub(next)
}
