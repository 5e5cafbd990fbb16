package evaluator

import (
	"crypto/md5"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
)

// Vectors computed with the reference algorithm in Python:
//
//	def hp(ids, it=1):
//	    s = ",".join(str(x) for x in ids * it)
//	    v = (int(hashlib.md5(s.encode()).hexdigest(), 16) % 9999) / 9998 * 100
//	    return hp(ids, it + 1) if v == 100 else v
func TestHashedPercentageVectors(t *testing.T) {
	for _, tc := range []struct {
		ids  []string
		want float64
	}{
		{[]string{"a", "b"}, 56.72134426885377},
		{[]string{"1", "2"}, 26.59531906381276},
		{[]string{"78986", "32103813"}, 49.27985597119424},
		{[]string{"78986", "test_env_foobar"}, 54.53090618123625},
		{[]string{"", ""}, 51.200240048009604},
		{[]string{"segment", "user_123"}, 53.78075615123025},
		{[]string{"12345", "test_env_foobar"}, 51.990398079615915},
		{[]string{"é", "ü"}, 16.913382676535306},
		{[]string{strings.Repeat("x", 200), "y"}, 6.741348269653931},
		// md5("seg,u3377") mod 9999 == 9998: the iterations rule applies and
		// "seg,u3377,seg,u3377" is hashed instead.
		{[]string{"seg", "u3377"}, 97.53950790158031},
	} {
		if got := HashedPercentage(tc.ids...); got != tc.want {
			t.Errorf("HashedPercentage(%q) = %v, want %v", tc.ids, got, tc.want)
		}
	}
}

func TestPercentageIterations(t *testing.T) {
	// A seam hash that returns 9998 (mod 9999) for the first two iterations.
	var calls []string
	fake := func(b []byte) [md5.Size]byte {
		calls = append(calls, string(b))
		var s [md5.Size]byte
		if len(calls) < 2 {
			s[15] = 0x0e // 9998 = 0x270e
			s[14] = 0x27
		} else {
			s[15] = 1
		}
		return s
	}
	got := percentageIter([]byte("a,b"), 2, fake)
	want := []string{"a,b,a,b", "a,b,a,b,a,b"}
	if fmt.Sprint(calls) != fmt.Sprint(want) || got != 1.0/9998*100 {
		t.Errorf("calls %q, got %v", calls, got)
	}
}

func TestMod9999(t *testing.T) {
	var s [md5.Size]byte
	for i := range s {
		s[i] = 0xff
	}
	// (2^128 - 1) mod 9999, from Python: (2**128 - 1) % 9999 == 8967
	if got := mod9999(&s); got != 8967 {
		t.Errorf("mod9999(ff..ff) = %d", got)
	}
}

// Same identity, same bucket, across recompiles and feature reordering.
func TestSplitStability(t *testing.T) {
	build := func(reverse bool) *Model {
		env := &Environment{Key: "env"}
		for i := 0; i < 5; i++ {
			env.Features = append(env.Features, Feature{Key: fmt.Sprint(i), Name: fmt.Sprint("f", i),
				Variants: []Variant{{Key: "a", Value: "A", Weight: 33, Priority: 1}, {Key: "b", Value: "B", Weight: 33, Priority: 2}}})
		}
		if reverse {
			for i, j := 0, len(env.Features)-1; i < j; i, j = i+1, j-1 {
				env.Features[i], env.Features[j] = env.Features[j], env.Features[i]
			}
			for i := range env.Features {
				v := env.Features[i].Variants
				v[0], v[1] = v[1], v[0]
			}
		}
		m, err := Compile(env)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	m1, m2 := build(false), build(true)
	for i := 0; i < 2000; i++ {
		id := &Identity{Identifier: fmt.Sprint("user-", i)}
		for f := 0; f < 5; f++ {
			a, _ := m1.Flag(fmt.Sprint("f", f), id)
			b, _ := m2.Flag(fmt.Sprint("f", f), id)
			if a.Value != b.Value || a.Variant != b.Variant || a.Reason != b.Reason {
				t.Fatalf("identity %s feature %d: %+v vs %+v", id.Identifier, f, a, b)
			}
		}
	}
}

func TestDistribution(t *testing.T) {
	const n = 100000
	env := &Environment{Key: "env",
		Features: []Feature{{Key: "77", Name: "mv", Value: "control", Variants: []Variant{
			{Key: "a", Value: "a", Weight: 20, Priority: 1},
			{Key: "b", Value: "b", Weight: 30, Priority: 2},
			{Key: "c", Value: "c", Weight: 25, Priority: 3},
		}}},
		Segments: []Segment{{Key: "split", Name: "quarter", Rules: []Rule{{Type: RuleAll,
			Conditions: []Condition{{Operator: OpPercentageSplit, Value: "25"}}}}}},
	}
	m, err := Compile(env)
	if err != nil {
		t.Fatal(err)
	}
	inSeg := 0
	counts := map[string]int{}
	buf := make([]Flag, 0, 1)
	for i := 0; i < n; i++ {
		id := &Identity{Identifier: fmt.Sprint("identity-", i)}
		if len(m.Evaluate(id).Segments) == 1 {
			inSeg++
		}
		buf = m.AppendFlags(buf[:0], id)
		counts[buf[0].Variant]++
	}
	check := func(what string, got int, pct float64) {
		share := float64(got) / n * 100
		if math.Abs(share-pct) > 1 {
			t.Errorf("%s: %.2f%%, want %v%% ± 1", what, share, pct)
		}
	}
	check("PERCENTAGE_SPLIT 25", inSeg, 25)
	check("variant a", counts["a"], 20)
	check("variant b", counts["b"], 30)
	check("variant c", counts["c"], 25)
	check("control", counts[ControlVariant], 25)
}

// TestMod9999Random compares mod9999 with math/big on random and extreme digests.
func TestMod9999Random(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	digests := [][md5.Size]byte{{}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	for range 10000 {
		var d [md5.Size]byte
		for i := range d {
			d[i] = byte(r.Uint32())
		}
		digests = append(digests, d)
	}
	m := big.NewInt(9999)
	for _, d := range digests {
		want := new(big.Int).Mod(new(big.Int).SetBytes(d[:]), m).Uint64()
		if got := mod9999(&d); uint64(got) != want {
			t.Fatalf("mod9999(%x) = %d, want %d", d, got, want)
		}
	}
}
