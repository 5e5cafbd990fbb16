package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixture is a Flagsmith document of package flagsmithdoc's test data.
func fixture(parts ...string) string {
	return filepath.Join(append([]string{"..", "..", "flagsmithdoc", "testdata"}, parts...)...)
}

func TestImportFlagsmith(t *testing.T) {
	out := filepath.Join(t.TempDir(), "flags")
	code, stdout, stderr := runCmd(t, "import", "flagsmith", "--out", out, fixture("multienv", "prd.json"), fixture("multienv", "stg.json"), fixture("multienv", "dev.json"))
	if code != 0 {
		t.Fatalf("import: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{"Imported 6 features, 3 segments and 3 environments (development, production, staging) into " + out, "Changed (2):", `feature "checkout_flow": its id is 52201`, "gitflags keygen"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output does not say %q:\n%s", want, stdout)
		}
	}
	if code, vout, _ := runCmd(t, "validate", out); code != 0 || !strings.Contains(vout, "6 features, 3 segments, 3 environments") {
		t.Fatalf("validate the import: exit %d\n%s", code, vout)
	}
	if _, err := os.Stat(filepath.Join(out, "schemas", "feature.schema.json")); err != nil {
		t.Error("the schemas were not written")
	}

	// Export it back, from the working directory and from a commit.
	exp := filepath.Join(t.TempDir(), "docs")
	code, stdout, stderr = runCmd(t, "export", "flagsmith", "--out", exp, out)
	if code != 0 || !strings.Contains(stdout, "Exported 3 environment document(s) to "+exp+": development.json (Development), production.json (Production), staging.json (Staging)") {
		t.Fatalf("export: exit %d\n%s%s", code, stdout, stderr)
	}
	git(t, out, "init", "-q")
	git(t, out, "add", "-A")
	git(t, out, "commit", "-qm", "import")
	exp2 := filepath.Join(t.TempDir(), "docs")
	if code, stdout, stderr := runCmd(t, "export", "flagsmith", "--rev", "HEAD", "--out", exp2, out); code != 0 {
		t.Fatalf("export --rev HEAD: exit %d\n%s%s", code, stdout, stderr)
	}
	// The exported documents import again, with nothing lost.
	docs, _ := filepath.Glob(filepath.Join(exp2, "*.json"))
	if len(docs) != 3 {
		t.Fatalf("exported %v", docs)
	}
	again := filepath.Join(t.TempDir(), "again")
	code, stdout, stderr = runCmd(t, append([]string{"import", "flagsmith", "--out", again}, docs...)...)
	if code != 0 || strings.Contains(stdout, "Not imported") {
		t.Fatalf("import the export: exit %d\n%s%s", code, stdout, stderr)
	}
}

func TestImportFlagsmithPartial(t *testing.T) {
	out := filepath.Join(t.TempDir(), "flags")
	a, b := fixture("partial", "a.json"), fixture("partial", "b.json")
	code, stdout, stderr := runCmd(t, "import", "flagsmith", "--out", out, a, b)
	if code != 1 || !strings.Contains(stdout, "Not imported as it is (3):") || !strings.Contains(stdout, `feature "ratio"`) ||
		!strings.Contains(stderr, "3 item(s) cannot be imported as they are (listed above); nothing written. Pass --allow-partial") {
		t.Fatalf("import: exit %d\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("something was written to %s: %v", out, err)
	}
	code, stdout, stderr = runCmd(t, "import", "flagsmith", "--allow-partial", "--out", out, a, b)
	if code != 0 || !strings.Contains(stdout, "Imported 3 features, 1 segments and 2 environments (production, staging) into "+out+", without the 3 item(s) listed above") {
		t.Fatalf("import --allow-partial: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, vout, _ := runCmd(t, "validate", out); code != 0 {
		t.Fatalf("validate: exit %d\n%s", code, vout)
	}
}

func TestImportExportUsage(t *testing.T) {
	dir := t.TempDir()
	notEmpty := filepath.Join(dir, "full")
	os.MkdirAll(notEmpty, 0o755)
	os.WriteFile(filepath.Join(notEmpty, "x"), []byte("x"), 0o644)
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"api_key": "k", "project": {}, `), 0o644)
	doc := fixture("single", "production.json")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"import"}, 2, "import what?"},
		{[]string{"import", "launchdarkly", "--out", "x", doc}, 2, `import "launchdarkly": only 'gitflags import flagsmith' exists`},
		{[]string{"import", "flagsmith", doc}, 2, "needs --out DIR"},
		{[]string{"import", "flagsmith", "--out", filepath.Join(dir, "o")}, 2, "needs at least one SOURCE"},
		{[]string{"import", "flagsmith", "--out", notEmpty, doc}, 2, "is not empty (it holds x)"},
		{[]string{"import", "flagsmith", "--out", filepath.Join(dir, "o"), filepath.Join(dir, "missing.json")}, 2, "missing.json"},
		{[]string{"import", "flagsmith", "--out", filepath.Join(dir, "o"), bad}, 2, "nothing imported: " + bad + ": invalid JSON"},
		{[]string{"import", "flagsmith", "--out", filepath.Join(dir, "o"), doc, doc}, 2, "given twice"},
		{[]string{"export"}, 2, "export what?"},
		{[]string{"export", "flagsmith", dir}, 2, "needs --out DIR"},
		{[]string{"export", "flagsmith", "--out", filepath.Join(dir, "e"), dir}, 2, "is not a flag repository"},
		{[]string{"export", "flagsmith", "--out", filepath.Join(dir, "e"), "a", "b"}, 2, "at most one repository"},
	} {
		code, stdout, stderr := runCmd(t, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q (stdout %q); want %d saying %q", c.args, code, stderr, stdout, c.code, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "o")); !os.IsNotExist(err) {
		t.Errorf("a failed import created its --out directory: %v", err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"import", "--help"}, "Usage: gitflags import flagsmith --out DIR [--allow-partial] SOURCE..."},
		{[]string{"help", "export"}, "Usage: gitflags export flagsmith --out DIR [--rev REV] [REPO]"},
	} {
		code, _, stderr := runCmd(t, c.args...)
		if code != 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d %s", c.args, code, stderr)
		}
	}
	if code, stdout, _ := runCmd(t, "help"); code != 0 || !strings.Contains(stdout, "  import    create a flag repository from Flagsmith") || !strings.Contains(stdout, "  export    write a flag repository's environments as Flagsmith") {
		t.Errorf("help does not list import and export:\n%s", stdout)
	}
}

func TestExportInvalidRepository(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, filepath.Join("..", "..", "flags-repo-template"), dir)
	os.WriteFile(filepath.Join(dir, "features", "broken.json"), []byte("{"), 0o644)
	out := filepath.Join(t.TempDir(), "docs")
	code, stdout, stderr := runCmd(t, "export", "flagsmith", "--out", out, dir)
	if code != 1 || !strings.Contains(stderr, "features/broken.json") || !strings.Contains(stderr, "is invalid") {
		t.Fatalf("export of an invalid repository: exit %d\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("something was written: %v", err)
	}
}
