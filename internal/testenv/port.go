package testenv

import (
	"fmt"
	"net"
	"testing"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago: it
// listens on port 0 so that the kernel picks one, and closes the listener.
// Another process may take the port before the caller binds it, so servers
// started on it must be retried when the bind fails, as [Redis] and [MinIO]
// do.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return port
}

// FreeAddr returns "127.0.0.1:<port>" for a port from [FreePort].
func FreeAddr(t testing.TB) string {
	t.Helper()
	return loopbackAddr(FreePort(t))
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("pick free port: %w", err)
	}
	return port, nil
}

func loopbackAddr(port int) string {
	return net.JoinHostPort("127.0.0.1", fmt.Sprint(port))
}

// RefusingAddr is the address of a listener that closes every connection
// at once: a server that cannot be reached, on a port that stays taken for
// the test, so that no other test's server starts there (a FreeAddr nobody
// listens on may be taken by one meanwhile).
func RefusingAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln.Addr().String()
}
