package flagdiff

import (
	"cmp"
	"slices"

	"github.com/gitflags/gitflags/flagrepo"
)

// Splits. The engine puts an identity into a variant by its hashed
// percentage p of (feature id, identity key): md5 as an integer modulo 9999,
// p = r / 9998 * 100, and a remainder r of 9998 is hashed again (see
// evaluator.HashedPercentage). With md5 uniform, r is uniform over 0..9997
// once the rehashes are folded in (a rehash lands on each of them alike), so
// the share of identities whose variant differs between two splits is
// exactly the number of remainders 0..9997 whose p falls in different bands,
// divided by 9998. That is what moves computes: no sampling.

// hashSpace is the number of hashed percentages an identity can get.
const hashSpace = 9998

// controlVariant names the band outside every variant: the identity keeps
// the control value (evaluator.ControlVariant).
const controlVariant = "control"

// band is a variant's share of a split, in the order the engine tries them
// (variant id order).
type band struct {
	key    string
	weight float64
}

// bands lists a split's variants with their weights.
func bands(ws []flagrepo.VariantWeight) []band {
	out := make([]band, 0, len(ws))
	for _, w := range ws {
		out = append(out, band{key: w.Variant.Key, weight: w.Weight})
	}
	return out
}

// hashed returns the hashed percentage of remainder r, as the engine
// computes it.
func hashed(r int) float64 { return float64(r) / 9998 * 100 }

// variantAt returns the variant an identity with hashed percentage p gets,
// with the engine's arithmetic (evaluator's split).
func variantAt(bs []band, p float64) string {
	start := 0.0
	for _, b := range bs {
		limit := b.weight + start
		if start <= p && p < limit {
			return b.key
		}
		start = limit
	}
	return controlVariant
}

// Move is a share of identities that a change moves from one variant to
// another ("control" is the control value).
type Move struct {
	From    string  `json:"from"`
	To      string  `json:"to"`
	Percent float64 `json:"percent"` // of the identities that reach the split
}

// moves returns, for two splits hashed with the same ids, the share of
// identities that change variant, in total and by (from, to), largest
// first.
func moves(before, after []band) (total float64, out []Move) {
	counts := map[[2]string]int{}
	n := 0
	for r := range hashSpace {
		p := hashed(r)
		a, b := variantAt(before, p), variantAt(after, p)
		if a != b {
			counts[[2]string{a, b}]++
			n++
		}
	}
	for k, c := range counts {
		out = append(out, Move{From: k[0], To: k[1], Percent: percentOf(c)})
	}
	slices.SortFunc(out, func(x, y Move) int {
		return cmp.Or(cmp.Compare(y.Percent, x.Percent), cmp.Compare(x.From, y.From), cmp.Compare(x.To, y.To))
	})
	return percentOf(n), out
}

// percentOf returns n remainders as a percentage of the hash space.
func percentOf(n int) float64 { return float64(n) / hashSpace * 100 }

// shares returns each variant's share of the hash space (control included).
func shares(bs []band) map[string]float64 {
	counts := map[string]int{}
	for r := range hashSpace {
		counts[variantAt(bs, hashed(r))]++
	}
	out := make(map[string]float64, len(counts))
	for k, c := range counts {
		out[k] = float64(c) / hashSpace
	}
	return out
}

// rehashed returns the expected share of identities that change variant
// when the hash itself changes (a new feature id, or a new identity key
// through a new client key), the splits going from before to after: the
// two hashes are independent, so an identity keeps its variant v with
// probability share_before(v) * share_after(v).
func rehashed(before, after []band) float64 {
	sb, sa := shares(before), shares(after)
	same := 0.0
	for k, p := range sb {
		same += p * sa[k]
	}
	return (1 - same) * 100
}

// splitIn returns the share of identities a PERCENTAGE_SPLIT condition of
// value pct matches (hashed percentage at most pct).
func splitCount(pct float64) int {
	n := 0
	for r := range hashSpace {
		if hashed(r) <= pct {
			n++
		}
	}
	return n
}

// hasSplit reports whether a split gives any identity a variant.
func hasSplit(bs []band) bool {
	for _, b := range bs {
		if b.weight > 0 {
			return true
		}
	}
	return false
}
