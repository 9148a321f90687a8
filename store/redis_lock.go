package store

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// unlockScript deletes a lock only if it still holds this holder's token.
var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// Lock takes the lock name for ttl, across every instance sharing Redis.
func (r *Redis) Lock(ctx context.Context, name string, ttl time.Duration) (func(), bool, error) {
	key := r.prefix + "lock:" + name
	token := strconv.FormatInt(time.Now().UnixNano(), 36)
	ok, err := r.c.SetNX(ctx, key, token, ttl).Result()
	if err != nil || !ok {
		return nil, false, unavailable(err)
	}
	return func() { unlockScript.Run(context.Background(), r.c, []string{key}, token) }, true, nil
}
