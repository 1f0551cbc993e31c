//go:build !unix

package redisserver

import "syscall"

func procAttr() *syscall.SysProcAttr { return nil }

// alive reports true: liveness of another process is not checked here, so
// a pid file is never taken for stale.
func alive(int) bool { return true }

func processName(int) string { return "" }
