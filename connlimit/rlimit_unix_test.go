//go:build linux

package connlimit

import (
	"syscall"
	"testing"
)

func TestRaiseFileLimit(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	lowered := lim
	lowered.Cur = max(lim.Max/2, 256)
	if lowered.Cur >= lim.Max {
		t.Fatalf("the hard limit (%d) is too low to test raising", lim.Max)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lowered); err != nil {
		t.Fatal(err)
	}
	got, err := RaiseFileLimit()
	if err != nil {
		t.Fatal(err)
	}
	if got != uint64(lim.Max) || FileLimit() != uint64(lim.Max) {
		t.Errorf("RaiseFileLimit = %d, FileLimit = %d; want the hard limit %d", got, FileLimit(), lim.Max)
	}
}
