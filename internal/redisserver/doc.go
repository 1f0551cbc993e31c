// Package redisserver runs a real redis-server as a child process: the
// embedded Redis of `exporter all` when no Redis URL is configured.
//
// The server keeps its files in one directory (the exporter uses
// <data dir>/redis): a generated redis.conf, the append-only file
// (appendonly yes, appendfsync everysec), its pid file and log. The
// directory is mode 0700 and the server listens only on a Unix socket in
// it (port 0, unixsocketperm 700), so only processes of the same user
// reach it. Socket paths are limited to about 100 bytes; with a longer
// directory path, or where the server fails to open its socket (a file
// system without sockets), it listens on 127.0.0.1 on a free port instead,
// with a password generated at each start and kept only in the 0700
// directory. maxmemory-policy is noeviction: the job store and the queue
// must never lose keys to memory pressure.
//
// Ownership of the directory is a lock file (internal/filelock) held by
// the process that called [Start] until [Server.Stop], so two exporters
// cannot run servers over one append-only file. On Linux the child gets a
// parent-death signal (SIGTERM, so it still writes its append-only file
// out), sent when the exporter dies, even by SIGKILL; the child is forked
// from an OS thread that lives as long as the child, because the kernel
// sends the signal when the forking thread exits. A server that outlived
// its exporter anyway (on other systems, or one that ignored the signal)
// is found at the next start from its pid file, checked to be the server of
// this directory, and stopped before a new one starts.
//
// It imports internal/filelock only.
package redisserver
