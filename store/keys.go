package store

import "strconv"

// The Redis key layout, built here only. On a Redis Cluster a script, a
// MULTI/EXEC and a multi-key command may only touch keys of one hash slot:
//
//   - a goods' keys (the goods hash, its buyers hash, and their staging and
//     scratch copies) share the hash tag {id}: its scripts, Put's
//     transaction and the rebuild's placing run on one master;
//   - every other key stands alone in its commands and scripts: a lock
//     (lock:<name>), an idempotency outcome (idem:<key>), a snowflake node
//     lease (snowflake:node:<n>);
//   - pipelines that read many goods (Stocks) may span slots: the cluster
//     client splits them by master.
//
// The key prefix carries no hash tag on a cluster (config.Validate), or it
// would be every key's tag.

// GoodsKey is the hash of a goods' stock, sale window and limit.
func GoodsKey(prefix string, goodsID int64) string {
	return prefix + "goods_{" + strconv.FormatInt(goodsID, 10) + "}"
}

// BuyersKey is the hash of each user's units of a goods with a per-user limit.
func BuyersKey(prefix string, goodsID int64) string { return GoodsKey(prefix, goodsID) + "_buyers" }

// StagingKey is where a key is built before it is put in place whole: it
// shares the key's hash tag, so that one script can move it there.
func StagingKey(key, token string) string { return key + ":staging:" + token }

// ScratchKey holds what a pass compares with key, for a moment.
func ScratchKey(key, token string) string { return key + ":scratch:" + token }

// CouponStockKey is the hash of one coupon sub-stock (field stock, and the
// markers of the additions it holds). Its hash tag is the sub-stock's own,
// chosen so that a template's sub-stocks spread over the Redis masters.
func CouponStockKey(prefix, tag string) string { return prefix + "coupon_stock_{" + tag + "}" }

// GoodsBucketKey is the hash of one bucket of a split goods' stock (field
// stock, its sale window, online, and the markers of the allotments it
// holds); like a coupon sub-stock, its hash tag is its own.
func GoodsBucketKey(prefix, tag string) string { return prefix + "goods_bucket_{" + tag + "}" }

// CouponTemplateKey holds a template as JSON, the second level of the
// template cache.
func CouponTemplateKey(prefix string, id int64) string {
	return prefix + "coupon_tpl_{" + strconv.FormatInt(id, 10) + "}"
}

// GoodsIndexKey is the sorted set of every goods id Redis holds (score:
// the id), the list the shopper reads walk.
func GoodsIndexKey(prefix string) string { return prefix + "goods_index" }

// GoodsCatalogKey says Redis holds every goods (their hashes, details
// included, and the index). A flush takes it: its absence tells a Redis
// that lost its data from one that does not know an id.
func GoodsCatalogKey(prefix string) string { return prefix + "goods_catalog" }
