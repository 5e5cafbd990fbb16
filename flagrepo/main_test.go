package flagrepo

import (
	"testing"

	"go.uber.org/goleak"
)

// Load runs worker goroutines: none may outlive it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
