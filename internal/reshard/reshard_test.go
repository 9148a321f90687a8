package reshard

import (
	"slices"
	"strings"
	"testing"

	"github.com/go-seckill/seckill/store"
)

// planStore is a map and hosts, for planning.
type planStore struct {
	Store
	hosts []string
	m     store.ShardMap
}

func (p planStore) LogicalHostIDs() []string { return p.hosts }
func (p planStore) ShardMap() store.ShardMap { return p.m }

func moved(p Plan) []int {
	var out []int
	for _, mv := range p.Moves {
		out = append(out, mv.DB)
	}
	return out
}

// Doubling moves half the logical databases, each from host l % n to host
// l % 2n: the binary tree. A logical database with no tables yet counts as
// on the first host.
func TestPlanDoublesMovingHalf(t *testing.T) {
	s := planStore{hosts: []string{"a", "b", "c", "d", "e"}}
	for l := range 8 {
		if l != 6 {
			s.m.DBs[l].Host = "a"
		}
	}
	p, err := MakePlan(s, 0)
	if err != nil || !slices.Equal(moved(p), []int{1, 3, 5, 7}) || !slices.Equal(p.Hosts, []string{"a", "b"}) {
		t.Fatalf("1 -> 2: moves %v onto %v, %v", moved(p), p.Hosts, err)
	}
	for _, mv := range p.Moves {
		s.m.DBs[mv.DB].Host = mv.To
	}
	s.m.DBs[6].Host = "a"
	p, err = MakePlan(s, 0)
	if err != nil || !slices.Equal(moved(p), []int{2, 3, 6, 7}) {
		t.Fatalf("2 -> 4: moves %v, %v", moved(p), err)
	}
	for _, mv := range p.Moves {
		if want := []string{"a", "b"}[mv.DB%2]; mv.From != want || mv.To != s.hosts[mv.DB%4] {
			t.Errorf("l%d: %s -> %s", mv.DB, mv.From, mv.To)
		}
	}
	// Switched, old copy not deleted yet: still a move, to finish.
	s.m.DBs[2] = store.LogicalPlace{Host: "c", Target: "a"}
	if p, _ := MakePlan(s, 4); !slices.Contains(moved(p), 2) {
		t.Errorf("a move left to clean is not planned: %v", moved(p))
	}
	for _, c := range []struct {
		hosts int
		want  string
	}{{3, "1, 2, 4 or 8"}, {8, "names 5"}} {
		if _, err := MakePlan(s, c.hosts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%d hosts: %v, want an error saying %q", c.hosts, err, c.want)
		}
	}
}
