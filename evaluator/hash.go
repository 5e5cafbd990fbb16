package evaluator

import (
	"crypto/md5"
	"encoding/binary"
	"math/bits"
)

// mod9999 returns the 128-bit big-endian integer sum modulo 9999.
func mod9999(sum *[md5.Size]byte) uint32 {
	// The digest read as a big-endian 128-bit integer, reduced at once.
	hi, lo := binary.BigEndian.Uint64(sum[:8]), binary.BigEndian.Uint64(sum[8:])
	return uint32(bits.Rem64(hi, lo, 9999))
}

// percentage computes the engine's hashed percentage of the ids whose
// comma-joined form is one: md5(one) as an integer mod 9999, scaled to
// [0, 100). A result of exactly 100 repeats the hash over the ids repeated
// (iterations 2, 3, ...), i.e. over one joined with itself by commas.
func percentage(one []byte) float64 {
	sum := md5.Sum(one)
	if r := mod9999(&sum); r != 9998 {
		return float64(r) / 9998 * 100
	}
	return percentageIter(one, 2, md5Sum)
}

func md5Sum(b []byte) [md5.Size]byte { return md5.Sum(b) }

// percentageIter continues the iterations rule from iteration it; sum is a
// seam for tests.
func percentageIter(one []byte, it int, sum func([]byte) [md5.Size]byte) float64 {
	for ; ; it++ {
		s := make([]byte, 0, it*(len(one)+1))
		for k := 0; k < it; k++ {
			if k > 0 {
				s = append(s, ',')
			}
			s = append(s, one...)
		}
		h := sum(s)
		if r := mod9999(&h); r != 9998 || it > 1000 {
			return float64(r) / 9998 * 100
		}
	}
}

// HashedPercentage returns the engine's hashed percentage, in [0, 100), of
// ids: md5 of the ids joined by commas, as a 128-bit integer modulo 9999,
// divided by 9998 and multiplied by 100; a result of 100 is recomputed with
// the ids repeated. It is what PERCENTAGE_SPLIT (ids: segment key, value)
// and variant selection (ids: feature key, identity key) compare.
func HashedPercentage(ids ...string) float64 {
	n := len(ids)
	for _, id := range ids {
		n += len(id)
	}
	var arr [128]byte
	b := arr[:0]
	if n > len(arr) {
		b = make([]byte, 0, n)
	}
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, id...)
	}
	return percentage(b)
}
