//go:build !linux

package testenv

const helperEnv = "TESTENV_HELPER_MODE"

func runHelper(string) int { return 1 }
