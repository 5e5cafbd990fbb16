package identities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func openTemp(t *testing.T) (*BoltStore, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "identities.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, path
}

func TestPersistAcrossReopen(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	got, err := s.Update(ctx, "3", "alice", []Trait{
		{Key: "plan", Value: "pro"}, {Key: "age", Value: 42}, {Key: "score", Value: 1.0},
		{Key: "beta", Value: true}, {Key: "ratio", Value: 0.25},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []Trait{{"age", int64(42)}, {"beta", true}, {"plan", "pro"}, {"ratio", 0.25}, {"score", 1.0}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Update = %#v, want %#v", got, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Traits(ctx, "3", "alice"); !errors.Is(err, ErrClosed) {
		t.Errorf("Traits after Close: %v, want ErrClosed", err)
	}
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	got, err = s2.Traits(ctx, "3", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen %#v, want %#v", got, want)
	}
	// Environments are separate.
	if got, _ := s2.Traits(ctx, "1", "alice"); len(got) != 0 {
		t.Errorf("other environment sees %v", got)
	}
	if got, _ := s2.Traits(ctx, "3", "bob"); got != nil {
		t.Errorf("unknown identity: %v", got)
	}
}

func TestDeleteByNil(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	if _, err := s.Update(ctx, "e", "id", []Trait{{"a", "1"}, {"b", int64(2)}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Update(ctx, "e", "id", []Trait{{"a", nil}, {"missing", nil}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []Trait{{"b", int64(2)}}; !reflect.DeepEqual(got, want) {
		t.Errorf("after delete %v, want %v", got, want)
	}
	// The last change of a key wins.
	got, _ = s.Update(ctx, "e", "id", []Trait{{"b", nil}, {"b", "back"}})
	if want := []Trait{{"b", "back"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("set after delete %v, want %v", got, want)
	}
	got, _ = s.Update(ctx, "e", "id", []Trait{{"b", nil}})
	if len(got) != 0 {
		t.Errorf("all deleted: %v", got)
	}
	if got, _ := s.Traits(ctx, "e", "id"); got != nil {
		t.Errorf("identity without traits still stored: %v", got)
	}
}

func TestAtomicity(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	base := []Trait{{"keep", "yes"}}
	if _, err := s.Update(ctx, "e", "id", base); err != nil {
		t.Fatal(err)
	}
	bad := [][]Trait{
		{{"new", "x"}, {"", "empty key"}},
		{{"new", "x"}, {strings.Repeat("k", MaxKeyLength+1), 1}},
		{{"new", "x"}, {"long", strings.Repeat("é", MaxStringLength+1)}},
		{{"new", "x"}, {"obj", map[string]any{"a": 1}}},
		{{"keep", nil}, {"arr", []any{1}}},
	}
	for i, changes := range bad {
		if _, err := s.Update(ctx, "e", "id", changes); !errors.Is(err, ErrInvalid) {
			t.Errorf("case %d: err %v, want ErrInvalid", i, err)
		}
	}
	// Too many traits in total: the limit counts stored traits too.
	many := make([]Trait, MaxTraits)
	for i := range many {
		many[i] = Trait{Key: fmt.Sprintf("t%04d", i), Value: int64(i)}
	}
	if _, err := s.Update(ctx, "e", "id", many); !errors.Is(err, ErrInvalid) {
		t.Errorf("%d+1 traits: %v, want ErrInvalid", MaxTraits, err)
	}
	// A bulk change fails as a whole.
	err := s.UpdateMany(ctx, "e", []Change{
		{Identifier: "other", Traits: []Trait{{"x", "1"}}},
		{Identifier: "id", Traits: many},
	})
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("UpdateMany: %v, want ErrInvalid", err)
	}
	if got, _ := s.Traits(ctx, "e", "other"); got != nil {
		t.Errorf("failed UpdateMany stored %v", got)
	}
	if got, _ := s.Traits(ctx, "e", "id"); !reflect.DeepEqual(got, base) {
		t.Errorf("after failed updates %v, want %v", got, base)
	}
	// Exactly the limit is fine.
	if _, err := s.Update(ctx, "e", "id2", many); err != nil {
		t.Errorf("%d traits: %v", MaxTraits, err)
	}
	// Exactly the length limits are fine.
	ok := []Trait{{strings.Repeat("ü", MaxKeyLength), strings.Repeat("é", MaxStringLength)}}
	if _, err := s.Update(ctx, "e", "id3", ok); err != nil {
		t.Errorf("values at the limits: %v", err)
	}
	for _, id := range []string{"", strings.Repeat("x", MaxIdentifierLength+1)} {
		if _, err := s.Update(ctx, "e", id, base); !errors.Is(err, ErrInvalid) {
			t.Errorf("identifier of %d chars: %v", len(id), err)
		}
	}
}

func TestCancelledContext(t *testing.T) {
	s, _ := openTemp(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Update(ctx, "e", "id", []Trait{{"a", "b"}}); !errors.Is(err, context.Canceled) {
		t.Errorf("Update: %v", err)
	}
	if err := s.UpdateMany(ctx, "e", []Change{{"id", []Trait{{"a", "b"}}}}); !errors.Is(err, context.Canceled) {
		t.Errorf("UpdateMany: %v", err)
	}
	if _, err := s.Traits(ctx, "e", "id"); !errors.Is(err, context.Canceled) {
		t.Errorf("Traits: %v", err)
	}
	if _, err := s.Increment(ctx, "e", "id", "n", 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Increment: %v", err)
	}
	if got, _ := s.Traits(context.Background(), "e", "id"); got != nil {
		t.Errorf("cancelled writes stored %v", got)
	}
}

func TestIncrement(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	for i, want := range []int64{5, 10, 7} {
		by := []int64{5, 5, -3}[i]
		got, err := s.Increment(ctx, "e", "id", "n", by)
		if err != nil || got != want {
			t.Fatalf("step %d: %d, %v; want %d", i, got, err, want)
		}
	}
	if _, err := s.Update(ctx, "e", "id", []Trait{{"s", "text"}, {"f", 1.5}, {"big", int64(1<<63 - 1)}}); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"s", "f", "big"} {
		if _, err := s.Increment(ctx, "e", "id", key, 1); !errors.Is(err, ErrInvalid) {
			t.Errorf("increment %s: %v, want ErrInvalid", key, err)
		}
	}
	got, _ := s.Traits(ctx, "e", "id")
	if want := []Trait{{"big", int64(1<<63 - 1)}, {"f", 1.5}, {"n", int64(7)}, {"s", "text"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("traits %v, want %v", got, want)
	}
}

func TestConcurrent(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	const workers, rounds = 8, 25
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("user-%d", w%4) // two workers share each identity
			for i := range rounds {
				key := fmt.Sprintf("w%d", w)
				if _, err := s.Update(ctx, "e", id, []Trait{{key, int64(i)}}); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.Increment(ctx, "e", "counter", "n", 1); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.Traits(ctx, "e", id); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	got, _ := s.Traits(ctx, "e", "counter")
	if want := []Trait{{"n", int64(workers * rounds)}}; !reflect.DeepEqual(got, want) {
		t.Errorf("counter %v, want %v (lost increments)", got, want)
	}
	for u := range 4 {
		got, _ := s.Traits(ctx, "e", fmt.Sprintf("user-%d", u))
		if len(got) != 2 {
			t.Errorf("user-%d has %v, want two traits", u, got)
		}
		for _, tr := range got {
			if tr.Value != int64(rounds-1) {
				t.Errorf("user-%d %s = %v", u, tr.Key, tr.Value)
			}
		}
	}
}

func TestTraitJSON(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want string
	}{
		{1.0, `1.0`}, {1.5, `1.5`}, {1e21, `1e+21`}, {int64(3), `3`}, {"<a>", `"\u003ca\u003e"`},
		{true, `true`}, {nil, `null`}, {int(7), `7`},
	} {
		b, err := json.Marshal(Trait{Key: "k", Value: tc.v})
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"trait_key":"k","trait_value":` + tc.want + `}`; string(b) != want {
			t.Errorf("%v: %s, want %s", tc.v, b, want)
		}
		m, err := decodeTraits([]byte(`{"k":` + tc.want + `}`))
		if err != nil {
			t.Fatal(err)
		}
		n, _ := NormalizeValue(tc.v)
		if !reflect.DeepEqual(m["k"], n) {
			t.Errorf("round trip of %v: %#v", tc.v, m["k"])
		}
	}
	for _, s := range []string{"1e400", "-1e400"} {
		if _, err := ParseNumber(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseNumber(%s): %v", s, err)
		}
	}
}

// TestUnchangedTraitsDoNotWrite checks that sending the traits an identity
// already has (what SDKs do on every call) costs no write transaction, while
// any real change still writes.
func TestUnchangedTraitsDoNotWrite(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	traits := []Trait{{Key: "plan", Value: "pro"}, {Key: "age", Value: int64(41)}, {Key: "vip", Value: true}, {Key: "gone", Value: nil}}
	if _, err := s.Update(ctx, "1", "alice", traits); err != nil {
		t.Fatal(err)
	}
	pageWrites := func() int64 { st := s.db.Stats(); return st.TxStats.GetWrite() }
	writes := pageWrites()
	got, err := s.Update(ctx, "1", "alice", traits)
	if err != nil {
		t.Fatal(err)
	}
	if w := pageWrites(); w != writes {
		t.Errorf("an unchanged update wrote %d pages", w-writes)
	}
	if len(got) != 3 || got[0].Key != "age" || got[0].Value != int64(41) {
		t.Errorf("unchanged update returned %v", got)
	}
	for _, change := range [][]Trait{{{Key: "age", Value: int64(42)}}, {{Key: "vip", Value: nil}}, {{Key: "new", Value: "x"}}} {
		before := pageWrites()
		if _, err := s.Update(ctx, "1", "alice", change); err != nil {
			t.Fatal(err)
		}
		if pageWrites() == before {
			t.Errorf("change %v did not write", change)
		}
	}
	final, _ := s.Traits(ctx, "1", "alice")
	if len(final) != 3 || final[0].Value != int64(42) || final[1].Key != "new" || final[2].Key != "plan" {
		t.Errorf("final traits %v", final)
	}
}
