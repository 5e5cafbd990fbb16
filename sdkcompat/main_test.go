package sdkcompat

import (
	"testing"

	"go.uber.org/goleak"
)

// The server and node processes are waited for; no goroutine may outlive the tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
