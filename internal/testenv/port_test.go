package testenv

import (
	"net"
	"strconv"
	"testing"
)

func TestFreePort(t *testing.T) {
	t.Parallel()
	// The port is free when FreePort returns, but another test may take it
	// before this one binds: that race is why callers retry, so does this.
	var err error
	for range 3 {
		port := FreePort(t)
		if port <= 0 || port > 65535 {
			t.Fatalf("FreePort() = %d, want a port in 1..65535", port)
		}
		var l net.Listener
		if l, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			l.Close()
			return
		}
	}
	t.Fatalf("three ports from FreePort could not be bound: %v", err)
}

func TestFreeAddr(t *testing.T) {
	t.Parallel()
	addr := FreeAddr(t)
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("FreeAddr() = %q (%v), want 127.0.0.1:<port>", addr, err)
	}
}

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts real servers; skipped under -short")
	}
}
