// Package trigger is the HTTP API of the exporter: it decodes, validates
// and looks up export requests (POST /create's bbox and POST /export's
// area, which share planning, the naive cache, the quota and queueing in
// getOrCreate), creates or reuses jobs through the job store, enqueues
// their render tasks through internal/job's Enqueuer, and serves job
// status, layers, preview tiles of the layers, the storage left and
// package downloads (the GeoPackage and its metadata JSON). It never
// renders an export: a preview tile is one tile of the layer's source
// passed through for viewing.
//
// Requests are authenticated by [Authenticator], a middleware that takes the
// token from the request, has internal/auth verify it and check the role,
// and answers refusals with 401 or 403 and a WWW-Authenticate challenge.
//
// It imports internal/* and source (the layers' sources, for
// preview tiles); it meets the worker and the scheduler in internal/job.
package trigger
