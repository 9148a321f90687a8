package store

import (
	"fmt"
	"time"

	"github.com/bwmarrin/snowflake"
)

// IDs makes snowflake order ids: 41 bits of milliseconds, 10 of node, 12 of
// sequence. bwmarrin/snowflake measures time with the monotonic clock, so a
// wall clock stepping back does not make ids repeat within a process.
type IDs struct{ node *snowflake.Node }

// NewIDs makes ids for node (0..1023), which must be unique per instance.
func NewIDs(node int64) (*IDs, error) {
	n, err := snowflake.NewNode(node)
	if err != nil {
		return nil, fmt.Errorf("snowflake node %d: %w", node, err)
	}
	return &IDs{node: n}, nil
}

func (i *IDs) NewID() int64 { return i.node.Generate().Int64() }

func (i *IDs) FirstIDAt(t time.Time) int64 { return firstIDAt(t) }

// firstIDAt is the smallest id any node makes at or after t.
func firstIDAt(t time.Time) int64 {
	ms := t.UnixMilli() - snowflake.Epoch
	return max(ms, 0) << (snowflake.NodeBits + snowflake.StepBits)
}
