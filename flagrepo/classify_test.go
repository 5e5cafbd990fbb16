package flagrepo

import (
	"strings"
	"testing"
)

// classifySplit is classify as it was written first, with strings.Split: the
// reference for the allocation-free version.
func classifySplit(p string) (kind fileKind, key, env string) {
	parts := strings.Split(p, "/")
	if strings.HasPrefix(parts[0], ".") {
		return kindIgnored, "", ""
	}
	switch {
	case len(parts) == 1 && p == "gitflags.json":
		return kindSettings, "", ""
	case len(parts) == 1 && !strings.HasSuffix(p, ".json"):
		return kindIgnored, "", ""
	case len(parts) == 2 && parts[0] == "features" && strings.HasSuffix(parts[1], ".json"):
		return kindFeature, strings.TrimSuffix(parts[1], ".json"), ""
	case len(parts) == 2 && parts[0] == "segments" && strings.HasSuffix(parts[1], ".json"):
		return kindSegment, strings.TrimSuffix(parts[1], ".json"), ""
	case len(parts) == 2 && parts[0] == "schemas" && strings.HasSuffix(parts[1], ".schema.json"):
		return kindIgnored, "", ""
	case len(parts) == 3 && parts[0] == "environments" && parts[2] == "environment.json":
		return kindEnvironment, parts[1], parts[1]
	case len(parts) == 4 && parts[0] == "environments" && parts[2] == "features" && strings.HasSuffix(parts[3], ".json"):
		return kindEnvironmentFeature, strings.TrimSuffix(parts[3], ".json"), parts[1]
	case len(parts) >= 2 && parts[len(parts)-1] == "README.md":
		return kindIgnored, "", ""
	}
	return kindUnknown, "", ""
}

// TestClassifyMatchesSplit compares classify with classifySplit on every
// path made of a few interesting segments.
func TestClassifyMatchesSplit(t *testing.T) {
	segments := []string{"", ".", ".github", "features", "segments", "schemas", "environments", "prod", "a.json",
		".json", "environment.json", "README.md", "x.schema.json", "gitflags.json", "Features", "notes.txt"}
	var paths []string
	var build func(prefix string, depth int)
	build = func(prefix string, depth int) {
		if depth == 0 {
			return
		}
		for _, s := range segments {
			p := prefix + s
			paths = append(paths, p)
			build(p+"/", depth-1)
		}
	}
	build("", 4)
	for _, p := range paths {
		k1, key1, env1 := classify(p)
		k2, key2, env2 := classifySplit(p)
		if k1 != k2 || key1 != key2 || env1 != env2 {
			t.Errorf("classify(%q) = %v %q %q, want %v %q %q", p, k1, key1, env1, k2, key2, env2)
		}
	}
}

func TestValidKeyMatchesPattern(t *testing.T) {
	for _, k := range []string{"", "a", "A9", "9", "_a", "-a", ".a", "a_b.c-d", "a b", "a/b", "é", "aé", "a\x00",
		"..", ".", "a..", "Z-", strings.Repeat("x", 200), "a\xff", "a~"} {
		if got, want := validKey(k), KeyPattern.MatchString(k); got != want {
			t.Errorf("validKey(%q) = %v, KeyPattern says %v", k, got, want)
		}
	}
}
