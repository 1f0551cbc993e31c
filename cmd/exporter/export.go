package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/term"

	"github.com/geoexport/exporter/internal/client"
	"github.com/geoexport/exporter/internal/config"
)

const exportUsage = `Usage: exporter export -layer ID (-bbox MINX,MINY,MAXX,MAXY | -roi FILE) (-max-zoom Z | -resolution DEG) [flags]

Posts an export to a running exporter (POST /export), follows the job with
a progress bar (plain lines when standard error is no terminal), downloads
the package with resume, checks its SHA-256 against the service's, and
prints its path. A failed or cancelled export exits 1 with the service's
message. Running the same command again joins the same job, or downloads
the finished package, continuing a download that was cut off.

Every flag can also be set by its environment variable.

`

// exportFlags binds the export command's flags to cfg.
func exportFlags(cfg *client.Config, token *config.Secret, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("exporter export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Server, "server", cfg.Server, "base URL of the exporter")
	fs.Var(token, "token", `API token (JWT); "exporter token -sub NAME" mints one with the server's key`)
	fs.StringVar(&cfg.Layer, "layer", cfg.Layer, "id of the layer to export (dbId; GET /layers lists them)")
	fs.StringVar(&cfg.BBox, "bbox", cfg.BBox, "area to export: minx,miny,maxx,maxy in degrees (EPSG:4326)")
	fs.StringVar(&cfg.ROIFile, "roi", cfg.ROIFile, "area to export: a GeoJSON file of Polygons or MultiPolygons (FeatureCollection, Feature or geometry)")
	fs.Var((*zoomValue)(&cfg.MaxZoom), "max-zoom", "finest zoom to export (0..22); with -roi, replaces each feature's maxResolutionDeg")
	fs.Float64Var(&cfg.Resolution, "resolution", cfg.Resolution, "finest resolution in degrees per pixel, instead of -max-zoom")
	fs.Var((*zoomValue)(&cfg.MinZoom), "min-zoom", "coarsest zoom to export (default 0); with -roi, replaces each feature's minResolutionDeg")
	fs.IntVar(&cfg.Priority, "priority", cfg.Priority, "priority of the export, 0..999999999")
	fs.StringVar(&cfg.Description, "description", cfg.Description, "free text kept with the export")
	fs.StringVar(&cfg.Output, "out", cfg.Output, "path of the package, or a directory to put it in (default: the current directory)")
	fs.BoolVar(&cfg.NoWait, "no-wait", cfg.NoWait, "post the export, print the job id and exit")
	fs.DurationVar(&cfg.Poll, "poll", cfg.Poll, "how often the job's progress is read")
	fs.Usage = func() {
		fmt.Fprint(stderr, exportUsage)
		config.PrintFlags(stderr, fs)
	}
	return fs
}

// zoomValue is a zoom flag whose -1 is unset, and shows no default.
type zoomValue int

func (z *zoomValue) String() string {
	if z == nil || *z < 0 {
		return ""
	}
	return strconv.Itoa(int(*z))
}

func (z *zoomValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("%q is not a whole number", s)
	}
	*z = zoomValue(n)
	return nil
}

// exportFlagNames are the names of the export command's flags, for docs
// and their tests.
func exportFlagNames() []string {
	var names []string
	exportFlags(&client.Config{}, new(config.Secret), io.Discard).VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	return names
}

// isTerminal reports whether w is a terminal, where progress is drawn
// as bars.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// runExport is the export command.
func runExport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, terminal bool) error {
	cfg := client.DefaultConfig()
	var token config.Secret
	fs := exportFlags(&cfg, &token, stderr)
	if err := config.SetFromEnv(fs, getenv); err != nil {
		return &usageError{err}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{err}
	}
	if fs.NArg() > 0 {
		return &usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	cfg.Token = token.Reveal()
	if err := cfg.Validate(); err != nil {
		return &usageError{fmt.Errorf("invalid export:\n%w", err)}
	}
	body, err := cfg.ExportBody()
	if err != nil {
		return &usageError{err}
	}
	c := client.New(cfg.Server, cfg.Token)
	started, err := c.Export(ctx, body)
	if err != nil {
		return err
	}
	if cfg.NoWait {
		fmt.Fprintln(stdout, started.JobID)
		return nil
	}
	show := newProgress(stderr, terminal)
	switch {
	case started.Status == "Completed":
		fmt.Fprintf(stderr, "export %s: the package exists already\n", started.JobID)
	case started.Duplicated:
		fmt.Fprintf(stderr, "export %s: joined the running export of the same tiles\n", started.JobID)
	default:
		fmt.Fprintf(stderr, "export %s: started\n", started.JobID)
	}
	j, err := c.Follow(ctx, started.JobID, cfg.Poll, show.job, show.warn)
	show.end()
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("stopped following export %s, which goes on in the service: run the same command again to follow it", started.JobID)
	}
	if err != nil {
		return err
	}
	if j.Result == nil || j.Result.FileURI == "" {
		return fmt.Errorf("export %s is Completed but has no fileUri", j.ID)
	}
	dest, err := outputPath(cfg.Output, j.Result.FileURI)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	if j.SHA256 == "" {
		fmt.Fprintf(stderr, "export %s: the service reports no sha256; the download cannot be verified\n", j.ID)
	}
	d, err := c.Download(ctx, j.Result.FileURI, dest, j.SHA256, show.download(dest))
	show.end()
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("stopped the download of %s: run the same command again to resume it", dest)
	}
	if err != nil {
		return err
	}
	switch {
	case d.Existing:
		fmt.Fprintf(stderr, "%s already holds the package (%d bytes, sha256 verified)\n", d.Path, d.Size)
	case d.Verified:
		fmt.Fprintf(stderr, "downloaded %s (%d bytes, sha256 verified)\n", d.Path, d.Size)
	default:
		fmt.Fprintf(stderr, "downloaded %s (%d bytes, not verified)\n", d.Path, d.Size)
	}
	fmt.Fprintln(stdout, d.Path)
	return nil
}

// outputPath is where the package at uri goes: out itself, or its file
// name in the directory out (an existing one, one written with a final
// separator, or the current one when out is empty).
func outputPath(out, uri string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", fmt.Errorf("fileUri %q: %w", uri, err)
	}
	name := path.Base(u.Path)
	if name == "/" || name == "." || name == "" {
		return "", fmt.Errorf("fileUri %q names no file", uri)
	}
	if out == "" {
		return name, nil
	}
	if st, err := os.Stat(out); err == nil && st.IsDir() || strings.HasSuffix(out, string(filepath.Separator)) {
		return filepath.Join(out, name), nil
	}
	return out, nil
}
