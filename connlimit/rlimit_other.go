//go:build !unix

package connlimit

// RaiseFileLimit does nothing where there is no RLIMIT_NOFILE; it returns
// the limit FileLimit assumes.
func RaiseFileLimit() (uint64, error) { return FileLimit(), nil }

// FileLimit returns the number of connections' worth of descriptors assumed
// where the system has no RLIMIT_NOFILE to read.
func FileLimit() uint64 { return 16384 }
