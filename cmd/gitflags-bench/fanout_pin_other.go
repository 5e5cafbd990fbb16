//go:build !linux

package main

import "errors"

func pinThreads(pid int, cpus []int) error {
	return errors.New("--pin needs Linux")
}
