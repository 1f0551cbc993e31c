// Package client is the exporter's command-line client without the
// command line: it builds a POST /export request from a layer, a bbox or
// a GeoJSON file and zooms or a resolution (Config), posts it to a
// running exporter, follows the job on GET /jobs/{id}, and downloads the
// package with resume (HTTP Range into a .part file) and checks it against
// the SHA-256 the service reports.
//
// It speaks the HTTP API as any client does, in JSON: it imports no role
// and no job record, only internal/grid for the zoom levels. cmd/exporter
// parses its flags and draws its progress.
package client
