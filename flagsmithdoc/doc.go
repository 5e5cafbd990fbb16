// Package flagsmithdoc converts between Flagsmith's data and gitflags flag
// repositories: Import reads Flagsmith environment documents (as served by
// GET /api/v1/environment-document/, one per environment) and Flagsmith's
// feature export files, and builds an equivalent flag repository; Export
// writes a repository's environment documents back.
//
// # What "equivalent" means
//
// An imported repository serves, for every identity and traits, the flags
// the Flagsmith engine evaluates from the documents (the engine as
// Flagsmith's SDKs run it for local evaluation: enabled, value and the
// variant of a multivariate split). That holds because the ids the engine
// hashes are kept:
//
//   - a segment's id (PERCENTAGE_SPLIT hashes it) is the segment's id;
//   - a multivariate option's id is the variant's id, which orders the
//     split; the engine orders by the ids of the feature state's
//     multivariate values, so Import checks that both orders agree;
//   - the engine hashes a multivariate feature state's django_id (its
//     "mv_hashing_seed") with the identity key, where gitflags hashes the
//     feature's id: a multivariate feature whose splits are all hashed with
//     one key gets that key as its id (a Change says so when it is not the
//     Flagsmith feature id); splits hashed with different keys (one per
//     environment, a segment override with its own split) cannot all keep
//     their buckets in the gitflags format, and Import reports them.
//
// # What cannot be imported
//
// Nothing is dropped silently. Import returns the repository it could build
// together with Issues, each naming the Flagsmith object (feature, segment,
// environment, identity override, ...) and saying why and what the
// repository does instead (left out, or a split whose buckets change).
// Changes list what was adapted without changing any evaluation (a segment
// renamed to a valid key, a feature id replaced by its hash key). Callers
// decide whether a result with Issues is acceptable (`gitflags import
// flagsmith` refuses it unless --allow-partial).
//
// Input that is not a Flagsmith document, or one whose structure is broken
// (a required field missing, a field of the wrong type), is an *InputError
// naming the source and the JSON pointer; nothing is imported then.
package flagsmithdoc
