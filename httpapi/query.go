package httpapi

import (
	"net/url"
	"strings"
	"unicode/utf8"
)

// parseQuery reads a raw query string strictly, where url.ParseQuery
// drops what it cannot read and URL.Query hides the error: each name and
// value must be valid percent-encoding ('+' is a space) of UTF-8 text. A ';'
// is part of a value, as in Flagsmith (Django), and empty pairs ("&&") are
// skipped. The error names the parameter.
func parseQuery(raw string) (url.Values, *requestError) {
	q := url.Values{}
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		rawName, rawValue, _ := strings.Cut(pair, "=")
		name, err := url.QueryUnescape(rawName)
		if err != nil || !utf8.ValidString(name) {
			return nil, badRequest("query parameter %q: %s", rawName, queryTextError(err))
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil || !utf8.ValidString(value) {
			return nil, badRequest("query parameter %q: %s", name, queryTextError(err))
		}
		q[name] = append(q[name], value)
	}
	return q, nil
}

func queryTextError(err error) string {
	if err != nil {
		return "invalid percent-encoding"
	}
	return "not valid UTF-8"
}

// queryParam returns the value of parameter name and whether it is there.
// A parameter given more than once is an error: clients and servers
// disagree on which one counts (Go reads the first, Django the last).
func queryParam(q url.Values, name string) (string, bool, *requestError) {
	switch vs := q[name]; len(vs) {
	case 0:
		return "", false, nil
	case 1:
		return vs[0], true, nil
	default:
		return "", false, badRequest("query parameter %q is given %d times; give it once", name, len(vs))
	}
}
