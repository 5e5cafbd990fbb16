package evaluator

import (
	"fmt"
	"testing"
)

// realisticEnvironment has 100 features (10 multivariate), 20 segments of
// 3-5 conditions each overriding two features, and 5 identity overrides.
func realisticEnvironment() *Environment {
	env := &Environment{Key: "env_client_key_0123456789", Name: "Production"}
	for i := 0; i < 100; i++ {
		f := Feature{
			Key:      fmt.Sprintf("%d", 10000+i),
			Name:     fmt.Sprintf("feature_%03d", i),
			Enabled:  i%3 != 0,
			Value:    fmt.Sprintf("value-%d", i),
			Metadata: map[string]any{"id": float64(i)},
		}
		if i%10 == 5 {
			f.Variants = []Variant{
				{Key: "a", Value: "A", Weight: 30, Priority: 1},
				{Key: "b", Value: "B", Weight: 30, Priority: 2},
				{Key: "c", Value: "C", Weight: 20, Priority: 3},
			}
		}
		env.Features = append(env.Features, f)
	}
	ops := []Condition{
		{Property: "plan", Operator: OpEqual, Value: "premium"},
		{Property: "age", Operator: OpGreaterThanInclusive, Value: "21"},
		{Property: "country", Operator: OpIn, Value: "de,fr,nl,gb,us"},
		{Property: "app_version", Operator: OpGreaterThan, Value: "1.2.0:semver"},
		{Property: "$.environment.name", Operator: OpEqual, Value: "Production"},
		{Property: "", Operator: OpPercentageSplit, Value: "50"},
		{Property: "email", Operator: OpRegex, Value: `.*@example\.com`},
		{Property: "beta", Operator: OpEqual, Value: "true"},
	}
	for s := 0; s < 20; s++ {
		n := 3 + s%3
		seg := Segment{Key: fmt.Sprintf("%d", 500+s), Name: fmt.Sprintf("segment_%02d", s)}
		r := Rule{Type: RuleAll}
		for c := 0; c < n; c++ {
			r.Conditions = append(r.Conditions, ops[(s+c)%len(ops)])
		}
		if s%4 == 3 {
			r.Type = RuleAny
		}
		seg.Rules = []Rule{{Type: RuleAll, Rules: []Rule{r}}}
		for k := 0; k < 2; k++ {
			p := float64(s)
			seg.Overrides = append(seg.Overrides, Override{
				Name: fmt.Sprintf("feature_%03d", (s*7+k*31)%100), Enabled: true,
				Value: fmt.Sprintf("seg-%d", s), Priority: &p,
			})
		}
		env.Segments = append(env.Segments, seg)
	}
	env.IdentityOverrides = map[string][]Override{}
	for i := 0; i < 5; i++ {
		env.IdentityOverrides[fmt.Sprintf("user-%d", i)] = []Override{{Name: fmt.Sprintf("feature_%03d", i*13), Enabled: true, Value: "mine"}}
	}
	// Benchmark fixtures: a static feature, a targeted one, a multivariate one.
	env.Features = append(env.Features,
		Feature{Key: "1", Name: "static", Enabled: true, Value: "s"},
		Feature{Key: "2", Name: "targeted", Enabled: false, Value: "off"},
		Feature{Key: "3", Name: "multivariate", Enabled: true, Value: "control",
			Variants: []Variant{{Key: "x", Value: "X", Weight: 33.3, Priority: 1}, {Key: "y", Value: "Y", Weight: 33.3, Priority: 2}}},
	)
	env.Segments = append(env.Segments, Segment{
		Key: "900", Name: "targeting",
		Rules: []Rule{{Type: RuleAll, Conditions: []Condition{
			{Property: "plan", Operator: OpEqual, Value: "premium"},
			{Property: "age", Operator: OpGreaterThanInclusive, Value: "21"},
			{Property: "country", Operator: OpIn, Value: "de,fr,nl"},
		}}},
		Overrides: []Override{{Name: "targeted", Enabled: true, Value: "on"}},
	})
	return env
}

func benchIdentity() *Identity {
	return &Identity{
		Identifier: "user-3",
		Traits: map[string]any{
			"plan": "premium", "age": float64(34), "country": "de",
			"app_version": "1.4.2", "email": "someone@example.com", "beta": true,
		},
	}
}

func mustCompile(b testing.TB, env *Environment) *Model {
	m, err := Compile(env)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

func BenchmarkFlagStatic(b *testing.B) {
	m, id := mustCompile(b, realisticEnvironment()), benchIdentity()
	b.ReportAllocs()
	for b.Loop() {
		if f, _ := m.Flag("static", id); f.Value != "s" {
			b.Fatal(f)
		}
	}
}

func BenchmarkFlagTargeted(b *testing.B) {
	m, id := mustCompile(b, realisticEnvironment()), benchIdentity()
	b.ReportAllocs()
	for b.Loop() {
		if f, _ := m.Flag("targeted", id); f.Value != "on" {
			b.Fatal(f)
		}
	}
}

func BenchmarkFlagMultivariate(b *testing.B) {
	m, id := mustCompile(b, realisticEnvironment()), benchIdentity()
	b.ReportAllocs()
	for b.Loop() {
		if f, _ := m.Flag("multivariate", id); f.Reason == "" {
			b.Fatal(f)
		}
	}
}

func BenchmarkAllFlagsIdentity(b *testing.B) {
	m, id := mustCompile(b, realisticEnvironment()), benchIdentity()
	buf := make([]Flag, 0, m.Len())
	b.ReportAllocs()
	for b.Loop() {
		buf = m.AppendFlags(buf[:0], id)
	}
	if len(buf) != m.Len() {
		b.Fatal(len(buf))
	}
}

func BenchmarkEvaluateIdentity(b *testing.B) {
	m, id := mustCompile(b, realisticEnvironment()), benchIdentity()
	b.ReportAllocs()
	for b.Loop() {
		_ = m.Evaluate(id)
	}
}

func BenchmarkEnvironmentFlags(b *testing.B) {
	m := mustCompile(b, realisticEnvironment())
	b.ReportAllocs()
	for b.Loop() {
		if len(m.EnvironmentFlags()) != m.Len() {
			b.Fatal()
		}
	}
}

func BenchmarkCompile(b *testing.B) {
	env := realisticEnvironment()
	b.ReportAllocs()
	for b.Loop() {
		mustCompile(b, env)
	}
}

// TestConcurrentUse evaluates one Model from many goroutines (run with -race).
func TestConcurrentUse(t *testing.T) {
	m := mustCompile(t, realisticEnvironment())
	want := m.Evaluate(benchIdentity())
	done := make(chan bool)
	for g := 0; g < 8; g++ {
		go func() {
			ok := true
			buf := make([]Flag, 0, m.Len())
			for i := 0; i < 200; i++ {
				buf = m.AppendFlags(buf[:0], benchIdentity())
				for j := range buf {
					if buf[j].Value != want.Flags[j].Value || buf[j].Reason != want.Flags[j].Reason {
						ok = false
					}
				}
				_, _ = m.Flag("targeted", &Identity{Identifier: fmt.Sprint(i)})
			}
			done <- ok
		}()
	}
	for g := 0; g < 8; g++ {
		if !<-done {
			t.Error("concurrent evaluation disagreed")
		}
	}
}
