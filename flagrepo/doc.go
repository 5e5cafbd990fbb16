// Package flagrepo defines the gitflags flag repository format: the typed
// documents (settings, features, segments, environments and per-environment
// feature states), loading them from a set of files into an immutable Snapshot,
// and validating them, with every problem reported at once by file, line,
// column and JSON pointer.
//
// The layout of a flag repository:
//
//	gitflags.json                               repository settings
//	features/<feature>.json                     a feature's definition and default state
//	segments/<segment>.json                     a segment's rules
//	environments/<env>/environment.json         an environment's settings
//	environments/<env>/features/<feature>.json  a feature's state in one environment
//	schemas/<kind>.schema.json                  copies of the JSON Schemas, for editors
//
// File and directory names are keys and match KeyPattern. Documentation and
// tooling files at the root (README.md, CODEOWNERS, ...) and in dot-directories
// (.github/, .gitlab/, ...) are ignored; anything else is reported.
//
// Loading is all-or-nothing: Load returns a Snapshot only when every file is
// valid, and otherwise a *ValidationError listing every problem.
package flagrepo
