// Package flagdiff says what a change to a flag repository does, in words a
// reviewer reads: the semantic diff of two flag repositories (two
// revisions, or a revision and a work tree), per environment.
//
// Compare loads both sides (the head incrementally from the base, so only
// the files that differ are parsed), takes what changed from
// changes.Between, and describes each change: a feature turned on for a
// segment, a split whose weights move identities between variants (the
// share computed exactly from the variant bands over the engine's hash
// space), a segment that now also matches more identities and where it is
// used, a removed feature still overridden somewhere, an id change that
// re-buckets everyone. Changes carry risks (production, moves_identities,
// rebuckets, removed_still_referenced). Given identities, Compare also
// evaluates them on both sides with package evaluator and counts, per
// environment and feature, those whose flag changes.
//
// A side that fails validation is reported with its problems; its invalid
// files are set aside (listed in the report) and the rest is compared.
//
// A Report renders as text, as Markdown for a pull-request comment, and as
// JSON (schemas/output/diff.schema.json in the source tree).
package flagdiff
