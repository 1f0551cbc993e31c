package main

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/geoexport/exporter/internal/client"
)

// progress shows how an export goes: progress bars on a terminal, plain
// lines otherwise (a log, a pipe, CI), where a line is written when the
// percentage or the status changes.
type progress struct {
	out      io.Writer
	terminal bool
	bar      *progressbar.ProgressBar

	// The first reading, for the rate of the plain lines.
	since time.Time
	base  int64
	// The last plain line's percentage and status.
	pct    int
	status string
}

// barWidth is the width of a bar in characters: the rest of the line
// fits a terminal of 80 columns.
const barWidth = 30

func newProgress(out io.Writer, terminal bool) *progress {
	return &progress{out: out, terminal: terminal, pct: -1}
}

// eta is the service's estimate as the progress shows it.
func eta(j client.Job) string {
	if d, ok := j.ETA(); ok {
		return "ETA " + d.String()
	}
	return "ETA …"
}

// job shows one reading of the job.
func (p *progress) job(j client.Job) {
	if p.terminal {
		if p.bar == nil {
			p.bar = progressbar.NewOptions64(j.TilesTotal, progressbar.OptionSetWriter(p.out), progressbar.OptionSetWidth(barWidth),
				progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("tiles"),
				progressbar.OptionSetPredictTime(false), progressbar.OptionShowDescriptionAtLineEnd())
		}
		p.bar.Describe(eta(j))
		_ = p.bar.Set64(j.TilesDone)
		return
	}
	now := time.Now()
	if p.since.IsZero() {
		p.since, p.base = now, j.TilesDone
	}
	if j.Percentage == p.pct && j.Status == p.status {
		return
	}
	p.pct, p.status = j.Percentage, j.Status
	rate := "…"
	if secs := now.Sub(p.since).Seconds(); secs > 0 {
		rate = fmt.Sprintf("%.0f", float64(j.TilesDone-p.base)/secs)
	}
	line := fmt.Sprintf("export %s: %s %d%%, %d of %d tiles, %s tiles/s", j.ID, j.Status, j.Percentage, j.TilesDone, j.TilesTotal, rate)
	if j.Status == "In-Progress" {
		line += ", " + eta(j)
	}
	fmt.Fprintln(p.out, line)
}

// warn shows a reading that failed and is retried.
func (p *progress) warn(err error) {
	if p.bar != nil {
		_ = p.bar.Clear()
	}
	fmt.Fprintf(p.out, "reading the job's progress: %v (retrying)\n", err)
}

// end ends the bar shown, of the job or of its download.
func (p *progress) end() {
	if p.bar != nil {
		_ = p.bar.Exit()
		fmt.Fprintln(p.out)
		p.bar = nil
	}
}

// download returns the meter of the download to dest.
func (p *progress) download(dest string) client.Meter {
	return &meter{p: p, dest: dest}
}

// meter shows a download.
type meter struct {
	p    *progress
	dest string
}

func (m *meter) Begin(offset, size int64) {
	p := m.p
	if !p.terminal {
		if offset > 0 {
			fmt.Fprintf(p.out, "downloading %s: resuming at byte %d of %d\n", m.dest, offset, size)
		} else {
			fmt.Fprintf(p.out, "downloading %s: %d bytes\n", m.dest, size)
		}
		return
	}
	if p.bar == nil {
		p.bar = progressbar.NewOptions64(size, progressbar.OptionSetWriter(p.out), progressbar.OptionSetWidth(barWidth),
			progressbar.OptionSetDescription("download"), progressbar.OptionShowBytes(true), progressbar.OptionShowTotalBytes(true))
	} else {
		p.bar.ChangeMax64(size)
	}
	_ = p.bar.Set64(offset)
}

func (m *meter) Wrote(n int) {
	if m.p.bar != nil {
		_ = m.p.bar.Add(n)
	}
}

func (m *meter) Retry(err error) {
	if m.p.bar != nil {
		_ = m.p.bar.Clear()
	}
	fmt.Fprintf(m.p.out, "download of %s interrupted: %v (resuming)\n", m.dest, err)
}
