//go:build !linux

package worker

// startWriteback does nothing where sync_file_range is not available.
func startWriteback(string) {}
