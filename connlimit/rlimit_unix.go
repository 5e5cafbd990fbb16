//go:build unix

package connlimit

import "syscall"

// RaiseFileLimit raises the soft limit on open files (RLIMIT_NOFILE) to the
// hard limit (at most 1,048,576) and returns the soft limit in force afterwards. (The Go runtime
// already does so at start on most systems; this makes it explicit and
// reports the result.)
func RaiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	// An unlimited hard limit (RLIM_INFINITY, as on macOS) is not a valid
	// soft limit: ask for a large finite one.
	target := min(uint64(lim.Max), 1<<20)
	if uint64(lim.Cur) < target {
		raised := lim
		raised.Cur = target
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
			return uint64(lim.Cur), err
		}
		lim = raised
	}
	return uint64(lim.Cur), nil
}

// FileLimit returns the soft limit on open files, or 1,024 when it cannot be
// read.
func FileLimit() uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 1024
	}
	return uint64(lim.Cur)
}
