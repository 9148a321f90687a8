package service

import (
	"testing"
	"time"
)

// A "sold out" read before a clear must not set the flag after it: that is
// the race that leaves an instance refusing buyers while stock exists.
func TestSoldOutFlagLosesToAClearThatCameFirst(t *testing.T) {
	f := newSoldOutFlags(time.Minute)
	set, gen := f.check(7)
	if set {
		t.Fatal("new flags start unset")
	}
	f.clear(7) // the stock came back while Redis was being asked
	f.set(7, gen)
	if set, _ := f.check(7); set {
		t.Error("a set from before the clear won")
	}
	_, gen = f.check(7)
	f.set(7, gen)
	if set, _ := f.check(7); !set {
		t.Error("a set after the clear was lost")
	}
	if set, _ := f.check(8); set {
		t.Error("flags are per goods")
	}
	f.clear(7)
	if set, _ := f.check(7); set {
		t.Error("clear left the flag")
	}
}

func TestSoldOutFlagExpires(t *testing.T) {
	f := newSoldOutFlags(20 * time.Millisecond)
	_, gen := f.check(1)
	f.set(1, gen)
	time.Sleep(30 * time.Millisecond)
	if set, _ := f.check(1); set {
		t.Error("the flag outlived its TTL")
	}
}

// The seed's placement: user_id/10 % tables + 1, and user_id % hosts.
func TestOrderPlacement(t *testing.T) {
	s := New(nil, nil, nil, nil, nil, Options{OrderTables: 16, OrderHosts: 2}, nil)
	for _, c := range []struct {
		user int64
		want OrderTable
	}{
		{1, OrderTable{Host: 2, Table: 1}},
		{10, OrderTable{Host: 1, Table: 2}},
		{165, OrderTable{Host: 2, Table: 1}},
		{159, OrderTable{Host: 2, Table: 16}},
	} {
		if got := s.shardedTable(c.user); got != c.want {
			t.Errorf("user %d: %+v, want %+v", c.user, got, c.want)
		}
	}
}
