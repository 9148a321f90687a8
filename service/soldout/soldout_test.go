package soldout

import (
	"testing"
	"time"
)

// A "sold out" read before a clear must not set the flag after it: that is
// the race that leaves an instance refusing buyers while stock exists.
func TestFlagLosesToAClearThatCameFirst(t *testing.T) {
	t.Parallel()
	f := New(time.Minute)
	set, gen := f.Check(7)
	if set {
		t.Fatal("new flags start unset")
	}
	f.Clear(7) // the stock came back while Redis was being asked
	f.Set(7, gen)
	if set, _ := f.Check(7); set {
		t.Error("a set from before the clear won")
	}
	_, gen = f.Check(7)
	f.Set(7, gen)
	if set, _ := f.Check(7); !set {
		t.Error("a set after the clear was lost")
	}
	if set, _ := f.Check(8); set {
		t.Error("flags are per goods")
	}
	f.Clear(7)
	if set, _ := f.Check(7); set {
		t.Error("clear left the flag")
	}
}

func TestFlagExpires(t *testing.T) {
	t.Parallel()
	f := New(20 * time.Millisecond)
	_, gen := f.Check(1)
	f.Set(1, gen)
	time.Sleep(30 * time.Millisecond)
	if set, _ := f.Check(1); set {
		t.Error("the flag outlived its TTL")
	}
}
