// Package evaluator evaluates feature flags exactly as the Flagsmith flag
// engine does (engine 10.x, as pinned by the conformance cases).
//
// An Environment (features, segments, identity overrides) is compiled once
// into an immutable Model; the Model then evaluates flags for any number of
// identities concurrently. CompileSnapshot compiles the environments of a
// flagrepo.Snapshot directly and, given the models of the previous
// snapshot, reuses the compiled form of every unchanged document. The
// package knows nothing of HTTP or Git.
//
// # Precedence
//
// Identity override > segment override > environment default. Identity
// overrides behave as a segment named "identity_overrides" matching
// "$.identity.identifier IN [identifiers]" with priority minus infinity.
// Among matching segments the override with the lowest priority wins
// (missing priority is +Inf); on a tie the earlier segment wins.
//
// # Segments
//
// A segment matches when it has at least one rule and every rule matches. A
// rule matches when its conditions, combined by its type (ALL, ANY, NONE),
// and its sub-rules, combined by the same type, both hold; an empty list
// holds.
//
// # Context values
//
// A condition's property names a trait, or, when it starts with "$." (or
// "$["), a JSONPath (RFC 9535) into the context: $.identity.identifier,
// $.identity.key, $.environment.key, $.environment.name and
// $.identity.traits.<name> (also in bracket form). A trait literally named
// like the property wins; a property that is not a valid JSONPath is a trait
// name; JSONPaths only yield primitive values, and paths selecting anything
// else (several nodes, other parts of the context) yield no value. Values are
// coerced as Python's engine does: strings matching -?[0-9]+ become
// integers, -?[0-9]+\.[0-9]+ floats; booleans print as True/False.
//
// # Operators
//
// IS_SET and IS_NOT_SET test presence (null is absent); any other operator
// is false for an absent value. EQUAL, NOT_EQUAL, GREATER_THAN(_INCLUSIVE),
// LESS_THAN(_INCLUSIVE) and CONTAINS cast the condition value to the context
// value's type (bool: anything but "False"/"false" is true; int and float as
// Python's int() and float() parse) and compare, integers exactly at any
// size; a failed cast is false. With a string context value and a value
// ending in ":semver", both are compared as semantic versions. NOT_CONTAINS
// requires a string. REGEX matches at the start of the context value's
// string form (Python's re syntax, see condition.Regex). MODULO takes
// "divisor|remainder" and a numeric or boolean value (1 or 0), with floored
// (Python) modulo. IN takes a JSON array (a value starting with "[") or a
// comma-separated list (no trimming); integers are compared as decimal
// strings and booleans and floats never match. Package flagrepo/condition
// defines how every condition value reads, for `gitflags validate` as here.
// PERCENTAGE_SPLIT hashes the segment key with the property's value (empty
// property: the identity key) and matches when the hashed percentage is at
// most the value.
//
// # Hashing and variants
//
// HashedPercentage is md5 of the comma-joined ids as a 128-bit integer,
// modulo 9999, divided by 9998, times 100; a result of 100 is recomputed
// with the ids repeated. With an identity, a multivariate feature (or
// override) takes the variant whose band, in ascending variant priority,
// contains HashedPercentage(feature key, identity key), with reason
// "SPLIT; weight=<w>"; outside every band it keeps its value and reports
// variant "control". The identity key is Identity.Key, or
// "<environment key>_<identifier>".
package evaluator
