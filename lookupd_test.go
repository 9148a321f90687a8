package main_test

import (
	"testing"

	"github.com/go-seckill/seckill/internal/harness"
)

// With nsq.lookupd set, consumers find the nsqd carrying the topic through
// nsqlookupd instead of a fixed list.
func TestConsumersFindNSQDThroughLookupd(t *testing.T) {
	t.Parallel()
	l := harness.StartNSQLookupd(t)
	e := harness.NewEnv(t)
	a, b := harness.StartNSQD(t, l.TCPAddr()), harness.StartNSQD(t, l.TCPAddr())
	e.Settings["SECKILL_NSQ_NSQD"] = a.TCPAddr() + "," + b.TCPAddr()
	e.Settings["SECKILL_NSQ_LOOKUPD"] = l.HTTPAddr()
	in := e.Start(t)
	g := in.CreateGoods(t, 100)
	byStatus, ids := stampede(t, in, g.ID, 400, "V5")
	checkAccepted(t, byStatus, ids, 100)
	e.CheckInvariants(t, g.ID, harness.Sale{Initial: 100, Accepted: ids})
}
