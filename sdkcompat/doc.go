// Package sdkcompat runs real, unmodified client SDKs against a gitflags
// server: the Flagsmith Node SDK (flagsmith-nodejs, remote and local
// evaluation) and the OpenFeature OFREP provider (@openfeature/ofrep-provider).
// The Node side lives in node/ (package.json, package-lock.json and the
// node --test files); this Go test builds the gitflags binary, prepares a
// flag repository from the template with a server key, starts the server,
// installs the pinned npm packages when needed and runs the Node tests.
//
// It needs node (>= 20) and npm on PATH; the npm registry must be reachable
// the first time (npm ci), later runs reuse node/node_modules.
package sdkcompat
