package handlers

import (
	"context"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/go-seckill/seckill/service"
)

// Buckets splits goods' stock over buckets (V14) and takes a bucket off
// and on line, for admins.
type Buckets interface {
	SplitGoods(ctx context.Context, goodsID int64) ([]service.Bucket, error)
	BucketOffline(ctx context.Context, goodsID int64, index int) ([]service.Bucket, error)
	BucketOnline(ctx context.Context, goodsID int64, index int) ([]service.Bucket, error)
}

func (a *api) bucketRoutes(admin *gin.RouterGroup) {
	admin.POST("/goods/:id/buckets", a.splitGoods)
	admin.POST("/goods/:id/buckets/:index/offline", a.onBucket(Buckets.BucketOffline))
	admin.POST("/goods/:id/buckets/:index/online", a.onBucket(Buckets.BucketOnline))
}

// splitGoods splits the goods now (200 with its buckets, also when it was
// split before).
func (a *api) splitGoods(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	a.answerBuckets(c, id, func(b Buckets) ([]service.Bucket, error) { return b.SplitGoods(c.Request.Context(), id) })
}

func (a *api) onBucket(change func(b Buckets, ctx context.Context, goodsID int64, index int) ([]service.Bucket, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		id, ok := pathID(c)
		if !ok {
			return
		}
		index, err := strconv.Atoi(c.Param("index"))
		if err != nil || index < 0 {
			writeErrorCode(c, http.StatusBadRequest, "invalid_request", "index must be a bucket's number, from 0")
			return
		}
		a.answerBuckets(c, id, func(b Buckets) ([]service.Bucket, error) { return change(b, c.Request.Context(), id, index) })
	}
}

func (a *api) answerBuckets(c *gin.Context, goodsID int64, do func(Buckets) ([]service.Bucket, error)) {
	if a.svc.Buckets == nil {
		writeErrorCode(c, http.StatusServiceUnavailable, "unavailable", "split stock is not wired")
		return
	}
	buckets, err := do(a.svc.Buckets)
	if err != nil {
		a.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"goods_id": goodsID, "buckets": buckets})
}
