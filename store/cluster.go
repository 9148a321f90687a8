package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// clusterSlots is the number of hash slots of a Redis Cluster.
const clusterSlots = 16384

// KeySlot is the hash slot of key on a Redis Cluster: CRC16 (XMODEM) of
// its hash tag (the text between the first { and the next }, when not
// empty) or else of the whole key, modulo 16384. It is what CLUSTER
// KEYSLOT answers, without asking.
func KeySlot(key string) int {
	if open := strings.IndexByte(key, '{'); open >= 0 {
		if end := strings.IndexByte(key[open+1:], '}'); end > 0 {
			key = key[open+1 : open+1+end]
		}
	}
	return int(crc16(key)) % clusterSlots
}

// crc16 is CRC-16/XMODEM (polynomial 0x1021, initial 0), the checksum
// Redis Cluster maps keys to slots with.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// ClusterMaster is one master of a Redis Cluster and the slot ranges it
// serves.
type ClusterMaster struct {
	Addr  string
	Slots [][2]int // inclusive ranges
}

// Owns says whether the master serves slot.
func (m ClusterMaster) Owns(slot int) bool {
	for _, r := range m.Slots {
		if slot >= r[0] && slot <= r[1] {
			return true
		}
	}
	return false
}

// ClusterMasters lists the masters that serve slots, ordered by the first
// slot each serves: a stable order while no slot moves, and on a cluster
// made by `redis-cli --cluster create A B C` the order A, B, C.
func ClusterMasters(ctx context.Context, c *redis.ClusterClient) ([]ClusterMaster, error) {
	ranges, err := c.ClusterSlots(ctx).Result()
	if err != nil {
		return nil, err
	}
	byAddr := map[string]*ClusterMaster{}
	for _, r := range ranges {
		if len(r.Nodes) == 0 {
			continue
		}
		addr := r.Nodes[0].Addr // the master comes first, then its replicas
		m := byAddr[addr]
		if m == nil {
			m = &ClusterMaster{Addr: addr}
			byAddr[addr] = m
		}
		m.Slots = append(m.Slots, [2]int{int(r.Start), int(r.End)})
	}
	masters := make([]ClusterMaster, 0, len(byAddr))
	for _, m := range byAddr {
		slices.SortFunc(m.Slots, func(a, b [2]int) int { return cmp.Compare(a[0], b[0]) })
		masters = append(masters, *m)
	}
	slices.SortFunc(masters, func(a, b ClusterMaster) int { return cmp.Compare(a.Slots[0][0], b.Slots[0][0]) })
	if len(masters) == 0 {
		return nil, errors.New("the cluster serves no slots")
	}
	return masters, nil
}

// SpreadTags returns n hash tags base.k, for keys "...{tag}...", such that
// tag i's slot is served by master i % masters (masters in the order of
// ClusterMasters): n keys built on them spread evenly over the masters, so
// that one hot thing split into n keys loads every master alike. The k are
// the smallest that fit, so the answer is the same while no slot moves. On
// a client of one server every tag fits: base.0 .. base.n-1.
func SpreadTags(ctx context.Context, c redis.UniversalClient, n int, base string) ([]string, error) {
	if n < 0 {
		return nil, fmt.Errorf("spread tags: n = %d", n)
	}
	// A } would end the tag early, and a { would make the caller's key
	// ambiguous.
	if strings.ContainsAny(base, "{}") {
		return nil, fmt.Errorf("spread tags: base %q must not contain { or }", base)
	}
	tag := func(k int) string { return base + "." + strconv.Itoa(k) }
	cc, ok := c.(*redis.ClusterClient)
	if !ok {
		tags := make([]string, n)
		for i := range tags {
			tags[i] = tag(i)
		}
		return tags, nil
	}
	masters, err := ClusterMasters(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("spread tags: %w", err)
	}
	owner := make([]int, clusterSlots) // slot -> master index; -1: served by none
	for i := range owner {
		owner[i] = -1
	}
	for mi, m := range masters {
		for _, r := range m.Slots {
			for s := r[0]; s <= r[1]; s++ {
				owner[s] = mi
			}
		}
	}
	// Master m gets the tags i = m, m+M, m+2M, ...: need[m] of them, the
	// first that land on it.
	perMaster := make([][]string, len(masters))
	need := make([]int, len(masters))
	for i := range n {
		need[i%len(masters)]++
	}
	missing := n
	// Each master serves at least one slot, so a tag lands on it about
	// once in 16384 tries at worst; the bound only stops a broken map.
	for k := 0; missing > 0; k++ {
		if k > (n+1)*clusterSlots*4 {
			return nil, errors.New("spread tags: no tags found for every master")
		}
		t := tag(k)
		m := owner[KeySlot("{"+t+"}")]
		if m >= 0 && len(perMaster[m]) < need[m] {
			perMaster[m] = append(perMaster[m], t)
			missing--
		}
	}
	tags := make([]string, n)
	for i := range tags {
		m := i % len(masters)
		tags[i] = perMaster[m][i/len(masters)]
	}
	return tags, nil
}
