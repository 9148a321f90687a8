package consumer_test

import (
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nsqio/go-nsq"

	"github.com/go-seckill/seckill/consumer"
	"github.com/go-seckill/seckill/store"
)

// A message published while the topic is quiet (an order placed between
// two rushes) reaches the reader at once, not at nsqd's next flush of the
// reader's output buffer. The readers' ages of the same lone messages are
// compared with a go-nsq reader left at its defaults, on another channel
// of the same nsqd, so that the machine's load weighs on both alike.
func TestALoneMessageIsNotHeldInNSQDsOutputBuffer(t *testing.T) {
	// nsqd flushes at once for a reader that has all the messages in
	// flight it asked for; readers that ask for several (every reader of
	// this service) wait for the flush.
	const topic, lone, inFlight = "latency_probe", 12, 4
	nsqd, err := store.StartNSQD(t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nsqd.Exit)
	// The channels exist before the first publish: go-nsq returns from
	// connecting before nsqd has taken its SUB, and a message published
	// meanwhile would reach only the channels nsqd had.
	for _, create := range []string{"topic/create?topic=" + topic,
		"channel/create?topic=" + topic + "&channel=ours", "channel/create?topic=" + topic + "&channel=defaults"} {
		resp, err := http.Post("http://"+nsqd.HTTPAddr()+"/"+create, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s", create, resp.Status)
		}
	}

	type arrival struct {
		id  int64
		age time.Duration
	}
	ours, defaults := make(chan arrival, lone), make(chan arrival, lone)
	var lastAge atomic.Int64 // set by Lag just before the handler runs
	c, err := consumer.StartBroadcast("id", func(id int64) { ours <- arrival{id, time.Duration(lastAge.Load())} }, consumer.Options{
		Topic: topic, Channel: "ours", NSQDs: []string{nsqd.TCPAddr()}, Concurrency: inFlight,
		Lag: func(age time.Duration) { lastAge.Store(int64(age)) }, NSQLog: log.New(io.Discard, "", 0),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	cfg := nsq.NewConfig()
	cfg.MaxInFlight = inFlight
	d, err := nsq.NewConsumer(topic, "defaults", cfg)
	if err != nil {
		t.Fatal(err)
	}
	d.SetLogger(log.New(io.Discard, "", 0), nsq.LogLevelError)
	d.AddHandler(nsq.HandlerFunc(func(m *nsq.Message) error {
		defaults <- arrival{age: time.Since(time.Unix(0, m.Timestamp))}
		return nil
	}))
	if err := d.ConnectToNSQD(nsqd.TCPAddr()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	p, err := nsq.NewProducer(nsqd.TCPAddr(), nsq.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	p.SetLogger(log.New(io.Discard, "", 0), nsq.LogLevelError)
	t.Cleanup(p.Stop)

	var ourAges, defaultAges []time.Duration
	for i := range int64(lone) {
		// Each message alone: the next is published once both readers
		// have this one.
		if err := p.Publish(topic, fmt.Appendf(nil, `{"id":%d}`, i+1)); err != nil {
			t.Fatal(err)
		}
		for _, ch := range []chan arrival{ours, defaults} {
			select {
			case a := <-ch:
				if ch == ours {
					ourAges = append(ourAges, a.age)
				} else {
					defaultAges = append(defaultAges, a.age)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("message %d not delivered within 10 s", i+1)
			}
		}
	}
	median := func(ds []time.Duration) time.Duration { slices.Sort(ds); return ds[len(ds)/2] }
	// nsqd flushes a default reader's buffer every 250 ms, so its lone
	// messages wait 125 ms in the median; ours are flushed within 25 ms.
	if o, dm := median(ourAges), median(defaultAges); o*3 > dm {
		t.Errorf("lone messages reached the reader in %v (median), a default reader in %v: want a third of that at most", o, dm)
	}
}
