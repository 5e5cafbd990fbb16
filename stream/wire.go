package stream

// The JSON of the websocket stream's value messages (protocol version 1),
// written by hand: byte for byte what encoding/json writes for
//
//	{"type":"flags","version":1,"revision":"…","flags":{"name":{"enabled":true,"value":1,"variant":"v"}}}
//	{"type":"changes","revision":"…","changed":{…},"removed":["…"]}
//
// (keys sorted, "variant" left out when empty, HTML characters escaped),
// without reflection. The fan-out encodes each distinct changes message of
// a revision once and hands the same bytes to every subscriber due it.

import (
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"
)

// ProtocolVersion is the websocket stream's protocol version.
const ProtocolVersion = 1

// AppendFlagsMessage appends the full-state message of flags at revision rev.
func AppendFlagsMessage(b []byte, rev string, flags map[string]Flag) []byte {
	b = append(b, `{"type":"flags","version":`...)
	b = strconv.AppendInt(b, ProtocolVersion, 10)
	b = append(b, `,"revision":`...)
	b = appendString(b, rev)
	b = append(b, `,"flags":`...)
	b = appendFlags(b, flags)
	return append(b, '}')
}

// AppendChangesMessage appends the changes message at revision rev;
// removed must be sorted.
func AppendChangesMessage(b []byte, rev string, changed map[string]Flag, removed []string) []byte {
	b = append(b, `{"type":"changes","revision":`...)
	b = appendString(b, rev)
	b = append(b, ',')
	b = appendChangesBody(b, changed, removed)
	return append(b, '}')
}

// appendChangesBody appends "changed":{…},"removed":[…] (removed sorted).
func appendChangesBody(b []byte, changed map[string]Flag, removed []string) []byte {
	b = append(b, `"changed":`...)
	b = appendFlags(b, changed)
	b = append(b, `,"removed":[`...)
	for i, k := range removed {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
	}
	return append(b, ']')
}

// AppendMessage appends m (a full state or changes; not an end).
func AppendMessage(b []byte, m *Message) []byte {
	if m.Full != nil {
		return AppendFlagsMessage(b, m.Revision, m.Full)
	}
	return AppendChangesMessage(b, m.Revision, m.Changed, m.Removed)
}

func appendFlags(b []byte, flags map[string]Flag) []byte {
	b = append(b, '{')
	switch len(flags) {
	case 0:
	case 1:
		for k, f := range flags {
			b = appendFlag(b, k, &f)
		}
	default:
		names := make([]string, 0, len(flags))
		for k := range flags {
			names = append(names, k)
		}
		slices.Sort(names)
		for i, k := range names {
			if i > 0 {
				b = append(b, ',')
			}
			f := flags[k]
			b = appendFlag(b, k, &f)
		}
	}
	return append(b, '}')
}

func appendFlag(b []byte, name string, f *Flag) []byte {
	b = appendString(b, name)
	b = append(b, `:{"enabled":`...)
	b = strconv.AppendBool(b, f.Enabled)
	b = append(b, `,"value":`...)
	b = appendValue(b, f.Value)
	if f.Variant != "" {
		b = append(b, `,"variant":`...)
		b = appendString(b, f.Variant)
	}
	return append(b, '}')
}

// appendValue appends a flag value (nil, string, bool or int64; anything
// else as encoding/json writes it, null if it cannot).
func appendValue(b []byte, v any) []byte {
	switch t := v.(type) {
	case nil:
		return append(b, "null"...)
	case string:
		return appendString(b, t)
	case bool:
		return strconv.AppendBool(b, t)
	case int64:
		return strconv.AppendInt(b, t, 10)
	case int:
		return strconv.AppendInt(b, int64(t), 10)
	}
	j, err := json.Marshal(v)
	if err != nil {
		return append(b, "null"...)
	}
	return append(b, j...)
}

// appendString appends s as encoding/json does (HTML characters escaped):
// plain ASCII directly, anything else through encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			j, _ := json.Marshal(s) // a string always encodes
			return append(b, j...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
