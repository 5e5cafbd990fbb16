package schemas

// ParseKeyPattern and (*keyPattern).Match are parseKeyPattern and match,
// for the external tests.
var ParseKeyPattern = parseKeyPattern

// Match is match.
func (k *keyPattern) Match(s string) bool { return k.match(s) }
