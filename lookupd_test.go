package main

import (
	"testing"

	"github.com/nsqio/nsq/nsqlookupd"

	"github.com/go-seckill/seckill/internal/testenv"
	"github.com/go-seckill/seckill/store"
)

// With nsq.lookupd set, consumers find the nsqd carrying the topic through
// nsqlookupd instead of a fixed list.
func TestConsumersFindNSQDThroughLookupd(t *testing.T) {
	opts := nsqlookupd.NewOptions()
	opts.TCPAddress, opts.HTTPAddress, opts.BroadcastAddress = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1"
	opts.LogLevel = 3
	opts.Logger = store.NSQLogger(newLogger(testenv.LogWriter(t)))
	l, err := nsqlookupd.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	go l.Main()
	t.Cleanup(l.Exit)

	e := newEnv(t)
	var addrs []string
	for range 2 {
		n, err := store.StartNSQD(t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", newLogger(testenv.LogWriter(t)), l.RealTCPAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(n.Exit)
		addrs = append(addrs, n.TCPAddr())
	}
	e.settings["SECKILL_NSQ_NSQD"] = addrs[0] + "," + addrs[1]
	e.settings["SECKILL_NSQ_LOOKUPD"] = l.RealHTTPAddr().String()
	in := e.start()
	g := in.createGoods(t, 100)
	byStatus, ids := stampede(t, in, g.ID, 400, "V5")
	checkAccepted(t, byStatus, ids, 100)
	checkSettled(t, in.drained(t, g.ID), 100, 100)
}
