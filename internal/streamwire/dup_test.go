package streamwire

import "testing"

// duplicateAt reports the first repeated id in request order, across
// lists, whether ids differ early or only in their last bytes.
func TestDuplicateAt(t *testing.T) {
	id := func(first, last byte) ID { var x ID; x[0], x[19] = first, last; return x }
	cases := []struct {
		name  string
		lists [][]ID
		want  int
	}{
		{"none", [][]ID{{id(1, 0), id(2, 0)}, {id(3, 0)}}, -1},
		{"same prefix, other tail", [][]ID{{id(1, 1), id(1, 2), id(1, 3)}}, -1},
		{"within a list", [][]ID{{id(1, 1), id(2, 0), id(1, 1)}}, 2},
		{"across lists", [][]ID{{id(1, 1), id(2, 0)}, {id(3, 0), id(2, 0)}}, 3},
		{"the earliest repeat wins", [][]ID{{id(5, 5), id(4, 4), id(4, 4), id(5, 5)}}, 2},
	}
	for _, tc := range cases {
		if got := duplicateAt(tc.lists); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}
