package stream

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"testing"
)

// apply applies m to state (a full state replaces it).
func apply(state map[string]Flag, m Message) map[string]Flag {
	if m.Full != nil {
		return maps.Clone(m.Full)
	}
	out := maps.Clone(state)
	for k, v := range m.Changed {
		out[k] = v
	}
	for _, k := range m.Removed {
		delete(out, k)
	}
	return out
}

func subscribe(t *testing.T, f *Fanout, spec Context) *Sub {
	t.Helper()
	s, err := f.Subscribe(context.Background(), spec, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// TestSharedChanges: subscribers with distinct contexts whose change is the
// same get the same encoded bytes, encoded once, and those bytes are what
// encoding each one's message gives (framed by FanoutOptions.Frame); a
// subscriber that missed two revisions gets its merged changes without
// shared bytes.
func TestSharedChanges(t *testing.T) {
	hub := NewHub()
	t.Cleanup(hub.Close)
	frames := 0
	frame := func(p []byte) []byte {
		frames++
		return append([]byte("FRAME:"), p...)
	}
	p := &publisher{t: t, f: NewFanout(hub, FanoutOptions{Frame: frame})}
	r := readTemplate(t)
	p.publish(r)
	subs := []*Sub{
		subscribe(t, p.f, Context{Env: "production", Identifier: "u1", Traits: map[string]any{"plan": "pro", "lifetime_value": int64(5000)}}),
		subscribe(t, p.f, Context{Env: "production", Identifier: "u2", Traits: map[string]any{"plan": "free"}}),
		subscribe(t, p.f, Context{Env: "production", Identifier: "u3"}),
		subscribe(t, p.f, Context{Env: "production"}),
		subscribe(t, p.f, Context{Env: "production", Server: true}),
	}
	slow := subscribe(t, p.f, Context{Env: "production", Identifier: "slow"})
	take(t, slow)
	for _, s := range subs {
		if m := take(t, s); m.Full == nil || m.Data != nil {
			t.Fatalf("first message %+v, want the full state, not shared", m)
		}
	}
	if got := p.f.Contexts(); got != 6 {
		t.Fatalf("%d contexts, want 6", got)
	}
	frames = 0
	setValue(t, r, "production", "api_rate_limit", 4321)
	rev := p.publish(r)
	if frames != 1 {
		t.Errorf("%d messages encoded for one distinct change, want 1", frames)
	}
	var first []byte
	for i, s := range subs {
		m := take(t, s)
		if m.Data == nil || len(m.Changed) != 1 || m.Changed["api_rate_limit"].Value != int64(4321) || m.Revision != rev {
			t.Fatalf("subscriber %d: %+v, want the shared change of api_rate_limit", i, m)
		}
		own := frame(AppendChangesMessage(nil, m.Revision, m.Changed, m.Removed))
		if !bytes.Equal(m.Data, own) {
			t.Fatalf("subscriber %d: shared %s\nits own encoding %s", i, m.Data, own)
		}
		if i == 0 {
			first = m.Data
		} else if &m.Data[0] != &first[0] {
			t.Errorf("subscriber %d has its own copy of the message", i)
		}
	}

	// Two revisions not taken: one merged message, encoded for the subscriber.
	setValue(t, r, "production", "api_rate_limit", 1)
	p.publish(r)
	setValue(t, r, "production", "max_cart_items", 7)
	rev = p.publish(r)
	m := take(t, slow)
	if m.Data != nil || m.Revision != rev || len(m.Changed) != 2 || m.Changed["api_rate_limit"].Value != int64(1) || m.Changed["max_cart_items"].Value != int64(7) {
		t.Fatalf("merged message %+v", m)
	}
}

// TestWireMatchesEncodingJSON: the hand-written encoding is what
// encoding/json writes for the same messages (HTML characters, Unicode,
// invalid UTF-8, U+2028, variants, removed flags, values of every kind).
func TestWireMatchesEncodingJSON(t *testing.T) {
	type flag struct {
		Enabled bool   `json:"enabled"`
		Value   any    `json:"value"`
		Variant string `json:"variant,omitempty"`
	}
	conv := func(m map[string]Flag) map[string]flag {
		out := map[string]flag{}
		for k, f := range m {
			out[k] = flag(f)
		}
		return out
	}
	flags := map[string]Flag{
		"plain":          {Enabled: true, Value: "v"},
		"html<&>":        {Value: "<script>&amp;</script>"},
		"unicode":        {Enabled: true, Value: "naïve ☃ \u2028 \u2029 \x00 \x1f \t\n\r\b\f \"q\" \\"},
		"bad utf8 \xff":  {Value: "\xfe\xff"},
		"int":            {Enabled: true, Value: int64(-9007199254740993)},
		"int0":           {Value: int64(0)},
		"bool":           {Enabled: true, Value: false},
		"nil":            {Enabled: false},
		"variant":        {Enabled: true, Value: "b", Variant: "variant_b"},
		"float":          {Value: 1.5e-7},
		"json.Number":    {Value: json.Number("12.50")},
		"object":         {Value: map[string]any{"b": 1, "a": []any{"x", nil}}},
		"variant <html>": {Value: int64(3), Variant: "<v>"},
		"":               {Value: ""},
		"long name " + fmt.Sprint(make([]int, 40)): {Enabled: true, Value: int64(1)},
	}
	for _, removed := range [][]string{nil, {"gone"}, {"a<b", "z", "ü"}} {
		want, err := json.Marshal(struct {
			Type     string          `json:"type"`
			Revision string          `json:"revision"`
			Changed  map[string]flag `json:"changed"`
			Removed  []string        `json:"removed"`
		}{"changes", "rev<1>", conv(flags), append([]string{}, removed...)})
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendChangesMessage(nil, "rev<1>", flags, removed); !bytes.Equal(got, want) {
			t.Errorf("changes:\n got %s\nwant %s", got, want)
		}
	}
	want, err := json.Marshal(struct {
		Type     string          `json:"type"`
		Version  int             `json:"version"`
		Revision string          `json:"revision"`
		Flags    map[string]flag `json:"flags"`
	}{"flags", ProtocolVersion, "9f2c", conv(flags)})
	if err != nil {
		t.Fatal(err)
	}
	if got := AppendFlagsMessage(nil, "9f2c", flags); !bytes.Equal(got, want) {
		t.Errorf("flags:\n got %s\nwant %s", got, want)
	}
	if got, want := AppendChangesMessage(nil, "r", map[string]Flag{}, nil), `{"type":"changes","revision":"r","changed":{},"removed":[]}`; string(got) != want {
		t.Errorf("empty changes: %s, want %s", got, want)
	}
}

// TestClientTraitsTurnedOff: when a revision turns allow_client_traits
// off, a client-key subscriber that sent traits is evaluated without them,
// as a new subscriber with the same subscription would be, and cannot send
// new ones; a server-key subscriber keeps them; turned on again, the sent
// traits apply again.
func TestClientTraitsTurnedOff(t *testing.T) {
	p, r, _ := newPublisher(t)
	pro := map[string]any{"plan": "pro", "lifetime_value": int64(5000)}
	client := Context{Env: "production", Identifier: "u1", Traits: pro}
	server := Context{Env: "production", Identifier: "u1", Traits: pro, Server: true}
	c := subscribe(t, p.f, client)
	sv := subscribe(t, p.f, server)
	cs := apply(nil, take(t, c))
	ss := apply(nil, take(t, sv))
	if cs["max_cart_items"].Value != int64(200) {
		t.Fatalf("max_cart_items %v with plan pro: the traits are not used", cs["max_cart_items"])
	}
	// Like a new subscriber: its full state in the current revision.
	fresh := func(spec Context) map[string]Flag {
		t.Helper()
		s := subscribe(t, p.f, spec)
		defer s.Close()
		return apply(nil, take(t, s))
	}
	setAllow := func(allow any) {
		const path = "environments/production/environment.json"
		doc := map[string]any{}
		if err := json.Unmarshal(r[path], &doc); err != nil {
			t.Fatal(err)
		}
		if allow == nil {
			delete(doc, "allow_client_traits")
		} else {
			doc["allow_client_traits"] = allow
		}
		data, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		r[path] = data
		p.publish(r)
	}

	setAllow(false)
	m := take(t, c)
	if m.Full != nil || len(m.Changed) == 0 {
		t.Fatalf("after allow_client_traits false: %+v, want the changes", m)
	}
	cs = apply(cs, m)
	if want := fresh(client); !maps.EqualFunc(cs, want, sameFlag) {
		t.Fatalf("after allow_client_traits false:\n%v\nwant, as a new subscriber:\n%v", cs, want)
	}
	if cs["max_cart_items"].Value == int64(200) {
		t.Fatal("the sent traits still apply")
	}
	if err := c.UpdateTraits(map[string]any{"plan": "free"}); err != ErrClientTraits {
		t.Errorf("UpdateTraits with client traits off: %v, want ErrClientTraits", err)
	}
	idle(t, c)
	// The server key keeps its traits: nothing changed for it.
	if m, ok := sv.Take(); ok {
		ss = apply(ss, m)
	}
	if ss["max_cart_items"].Value != int64(200) {
		t.Errorf("server-key subscriber: max_cart_items %v, want its traits to apply", ss["max_cart_items"])
	}

	setAllow(true)
	cs = apply(cs, take(t, c))
	if want := fresh(client); !maps.EqualFunc(cs, want, sameFlag) || cs["max_cart_items"].Value != int64(200) {
		t.Fatalf("after allow_client_traits true again:\n%v\nwant:\n%v", cs, want)
	}
	if err := c.UpdateTraits(map[string]any{"plan": "free"}); err != nil {
		t.Errorf("UpdateTraits with client traits on: %v", err)
	}
}

// TestLoans: a full state taken and not released, or due and not taken,
// is never updated in place by a later revision (the race detector would
// see a concurrent read and write); released, the context's flags are its
// own again, and every subscriber keeps getting the right values.
func TestLoans(t *testing.T) {
	p, r, _ := newPublisher(t)
	spec := Context{Env: "production", Identifier: "loan"}
	a := subscribe(t, p.f, spec)
	fa := take(t, a).Full
	b := subscribe(t, p.f, spec) // its full state due, not taken
	done := make(chan struct{})
	read := make(chan struct{})
	go func() { // reads a's full state while revisions are published
		defer close(read)
		for {
			select {
			case <-done:
				return
			default:
				_ = fa["max_cart_items"].Value
			}
		}
	}()
	setValue(t, r, "production", "max_cart_items", 7)
	p.publish(r)
	close(done)
	<-read
	if fa["max_cart_items"].Value != int64(50) {
		t.Fatalf("a's taken full state changed to %v", fa["max_cart_items"].Value)
	}
	fb := take(t, b).Full
	if fb["max_cart_items"].Value != int64(7) {
		t.Fatalf("b's full state %v, want 7", fb["max_cart_items"].Value)
	}
	a.Release()
	if m := take(t, a); m.Changed["max_cart_items"].Value != int64(7) {
		t.Fatalf("a's change %+v", m)
	}
	setValue(t, r, "production", "max_cart_items", 8)
	p.publish(r)
	if fb["max_cart_items"].Value != int64(7) {
		t.Fatalf("b's taken full state changed to %v", fb["max_cart_items"].Value)
	}
	b.Release()
	for _, v := range []int64{9, 10} {
		setValue(t, r, "production", "max_cart_items", v)
		p.publish(r)
		for _, s := range []*Sub{a, b} {
			if m := take(t, s); m.Changed["max_cart_items"].Value != v {
				t.Fatalf("change %+v, want %d", m, v)
			}
		}
	}
}
