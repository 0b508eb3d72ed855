package cpufeatures

import (
	"slices"
	"testing"
)

func TestParse(t *testing.T) {
	got, err := parse(" AVX512F, avx2,,")
	if err != nil || !slices.Equal(got, []string{"avx512f", "avx2"}) {
		t.Fatalf("parse = %v, %v; want [avx512f avx2]", got, err)
	}
	if got, err := parse(""); err != nil || got != nil {
		t.Fatalf("parse of nothing = %v, %v", got, err)
	}
	if _, err := parse("avx512f,avx9000"); err == nil {
		t.Fatal("an unknown feature was accepted")
	}
}
