package store

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/go-seckill/seckill/service"
)

// BenchmarkAccept runs the accept script from 64 goroutines at once,
// coalesced into shared pipelines and one call at a time. Run: go test
// ./store -run ^$ -bench Accept
func BenchmarkAccept(b *testing.B) {
	for _, mode := range []string{"coalesced", "alone"} {
		b.Run(mode, func(b *testing.B) {
			ctx := context.Background()
			r := openTestRedis(b)
			if err := r.Put(ctx, service.Goods{ID: 1, Stock: 1 << 40}); err != nil {
				b.Fatal(err)
			}
			var n atomic.Int64
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					tok, a := acceptedAs(1, i, strconv.FormatInt(i, 10), 1)
					var err error
					if mode == "alone" {
						err = acceptScript.Run(ctx, r.c, r.acceptKeys(tok), a.Number, tok.AcceptedAt.UnixMilli(), tok.UserID, acceptField(tok), acceptRecord(a)).Err()
					} else {
						_, err = r.Accept(ctx, tok, a)
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
