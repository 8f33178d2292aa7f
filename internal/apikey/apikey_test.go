package apikey

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestGenerate(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	counts := map[rune]int{}
	const n = 2000
	for range n {
		k, err := Generate()
		require.NoError(t, err)
		require.Len(t, k, Len)
		require.True(t, WellFormed(k), k)
		require.False(t, seen[k], "a repeated key")
		seen[k] = true
		for _, r := range k[len(Prefix):] {
			counts[r]++
		}
	}
	// Every base62 character turns up, none wildly more often than the
	// others (each is expected n*SecretLen/62 ≈ 1290 times).
	require.Len(t, counts, 62)
	for r, c := range counts {
		require.InDelta(t, n*SecretLen/62, c, 250, "character %q", r)
	}
}

func TestWellFormed(t *testing.T) {
	t.Parallel()
	good := Prefix + strings.Repeat("aZ09", SecretLen/4)
	require.True(t, WellFormed(good))
	for _, bad := range []string{
		"",
		Prefix,
		good[:Len-1],
		good + "a",
		"xx_" + good[len(Prefix):],
		"PO_" + good[len(Prefix):],
		good[:Len-1] + "-",
		good[:Len-1] + "=",
		good[:Len-2] + "é",
		" " + good[1:],
	} {
		require.False(t, WellFormed(bad), "%q", bad)
	}
}

func TestHash(t *testing.T) {
	t.Parallel()
	a, b := Hash("po_a"), Hash("po_b")
	require.NotEqual(t, a, b)
	require.Equal(t, a, Hash("po_a"))
	require.Len(t, a[:], 32)
}

func TestDisplayPrefix(t *testing.T) {
	t.Parallel()
	k, err := Generate()
	require.NoError(t, err)
	p := DisplayPrefix(k)
	require.Len(t, p, len(Prefix)+8)
	require.True(t, strings.HasPrefix(k, p))
	require.Equal(t, "po", DisplayPrefix("po"))
}

func TestValidateName(t *testing.T) {
	t.Parallel()
	require.NoError(t, ValidateName("checkout service"))
	require.NoError(t, ValidateName("결제 서버"))
	require.NoError(t, ValidateName(strings.Repeat("가", NameMaxLen)))
	for _, bad := range []string{"", "  ", strings.Repeat("a", NameMaxLen+1), "a\nb", "a\x00b", "\xff"} {
		require.Error(t, ValidateName(bad), "%q", bad)
	}
}
