// Package testenv starts the real servers that integration tests run
// against: a fresh redis-server for every test ([Redis]) and one MinIO
// server per test binary with a fresh bucket for every test ([MinIO]).
// [NewRedisClients] starts a Redis with the go-redis client, asynq client
// and inspector a component's tests use on it.
//
// [StartRedis] starts a redis-server a test may kill or start with
// options of its own (a replica, say), and [Sentinel] a primary, a replica
// and three sentinels watching them, with [SentinelSet.KillPrimary] and
// [SentinelSet.WaitPromoted] to drive a failover.
//
// Servers bind 127.0.0.1 on ports the kernel picks, keep their data in
// temporary directories and are stopped when the test (Redis) or the test
// binary (MinIO) ends, so tests are hermetic and may run in parallel, and
// several test binaries (go test ./...) may run at the same time.
//
// Binaries are looked up in this order: the environment variable
// (EXPORTER_TEST_REDIS_SERVER, EXPORTER_TEST_MINIO), then PATH (redis-server,
// minio), then <module root>/bin where `make tools` builds them. Under
// `go test -short` the helpers skip the test; otherwise a missing binary fails
// it with an install hint. There are no containers, fixed ports or
// environment-gated skips.
//
// Packages whose tests use [MinIO] should stop the shared server once their
// tests have run, which also removes its data directory:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }
//
// Without that the server is still killed when the test binary exits (on
// Linux via the parent-death signal), and its data directory, named
// exporter-testenv-minio-<pid>-* in os.TempDir, is removed by the next run
// that finds its owner process gone.
//
// [StartProcess] runs any other server the same way, for test helpers in
// other packages (source/sourcetest runs MapProxy with it): output to
// a log file that failures quote, a parent-death signal on Linux, a readiness
// probe ([Process.WaitReady]) and SIGTERM, then SIGKILL, to stop
// ([Process.Stop]).
//
// [HelperProcess] runs the test binary itself again as a helper process
// (one that holds a lock or a directory, say, until it is told to let go
// or killed), selected by an environment variable its TestMain reads
// (more variables may carry the helper's settings).
//
// [Printed] renders a value every way a program may print or log it, for
// tests that check a secret never shows.
//
// testenv is imported only from _test.go files and from other test-helper
// packages. It imports no other project package, and production code must
// never import it.
package testenv
