package harness

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/store"
)

// Buckets is a split goods' (V14) buckets as Redis holds them.
type Buckets struct {
	Split service.Split
	// Levels is each bucket's stock (-1: missing), Online whether it is
	// on line, Allotted the units its allotments gave it (the values of
	// its op: markers).
	Levels   []int64
	Online   []bool
	Allotted []int64
}

// Sum is what the buckets hold, and Given what they were given.
func (b Buckets) Sum() (held, given int64) {
	for i := range b.Levels {
		held += max(b.Levels[i], 0)
		given += b.Allotted[i]
	}
	return held, given
}

// Buckets reads goods' buckets; ok is false when it is not split.
func (s *Servers) Buckets(t testing.TB, goodsID int64) (b Buckets, ok bool) {
	t.Helper()
	ctx := context.Background()
	rdb := s.Redis()
	v, err := rdb.HGet(ctx, s.GoodsKey(goodsID), "buckets").Result()
	if err != nil {
		return b, false
	}
	if b.Split, ok = store.ParseSplit(v); !ok {
		t.Fatalf("goods %d: malformed split %q", goodsID, v)
	}
	for _, tag := range b.Split.Tags {
		f, err := rdb.HGetAll(ctx, store.GoodsBucketKey(s.Prefix, tag)).Result()
		if err != nil {
			t.Fatal(err)
		}
		level := int64(-1)
		if n, err := strconv.ParseInt(f["stock"], 10, 64); err == nil {
			level = n
		}
		var given int64
		for k, v := range f {
			if strings.HasPrefix(k, "op:") {
				n, _ := strconv.ParseInt(v, 10, 64)
				given += n
			}
		}
		b.Levels = append(b.Levels, level)
		b.Online = append(b.Online, f["online"] != "0")
		b.Allotted = append(b.Allotted, given)
	}
	return b, true
}

// CheckSoldThroughBuckets fails unless goods is split and its buckets
// sold units: they were given more than they hold.
func (s *Servers) CheckSoldThroughBuckets(t testing.TB, goodsID int64) {
	t.Helper()
	b, ok := s.Buckets(t, goodsID)
	if !ok {
		t.Fatalf("goods %d is not split", goodsID)
	}
	if held, given := b.Sum(); given <= held {
		t.Errorf("goods %d's buckets were given %d units and hold %d: they sold nothing (%+v)", goodsID, given, held, b)
	}
}
