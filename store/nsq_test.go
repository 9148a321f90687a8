package store

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nsqio/go-nsq"

	"github.com/go-seckill/seckill/service"
)

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// A batch's timeout messages are all published, each once with all its
// orders, those routed to an nsqd that is down on the next one; with every
// nsqd down, each says so.
func TestDeferTimeouts(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := StartNSQD(t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Exit()
	const topic = "timeouts"
	// 50 messages of 1 to 3 orders each.
	var groups [][]service.StockMessage
	var delays []time.Duration
	var ms []service.StockMessage
	for id := range int64(50) {
		var g []service.StockMessage
		for k := range id%3 + 1 {
			g = append(g, service.StockMessage{OrderID: 1000*k + id + 1, GoodsID: 3, UserID: id, Number: 1, Deadline: 1})
		}
		groups, ms = append(groups, g), append(ms, g...)
		delays = append(delays, 0)
	}

	// Half the messages route to the dead nsqd first (first OrderID modulo 2).
	p, err := NewPublisher([]string{deadAddr(t), n.TCPAddr()}, PublisherTopics{Timeout: topic}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	for i, err := range p.DeferTimeouts(context.Background(), groups, delays) {
		if err != nil {
			t.Errorf("message of order %d: %v", groups[i][0].OrderID, err)
		}
	}
	got := map[int64]int{}
	var mu sync.Mutex
	c, err := nsq.NewConsumer(topic, "test", nsq.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	c.SetLogger(nil, nsq.LogLevelError)
	c.AddHandler(nsq.HandlerFunc(func(m *nsq.Message) error {
		var clocks []service.StockMessage
		if err := json.Unmarshal(m.Body, &clocks); err != nil {
			return err
		}
		mu.Lock()
		for _, sm := range clocks {
			got[sm.OrderID]++
		}
		mu.Unlock()
		return nil
	}))
	if err := c.ConnectToNSQD(n.TCPAddr()); err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		done := len(got) == len(ms)
		mu.Unlock()
		if done {
			break
		}
	}
	mu.Lock()
	for _, m := range ms {
		if got[m.OrderID] != 1 {
			t.Errorf("order %d delivered %d times, want once", m.OrderID, got[m.OrderID])
		}
	}
	mu.Unlock()

	down, err := NewPublisher([]string{deadAddr(t), deadAddr(t)}, PublisherTopics{Timeout: topic}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer down.Stop()
	for i, err := range down.DeferTimeouts(context.Background(), groups[:3], delays[:3]) {
		if !errors.Is(err, service.ErrUnavailable) {
			t.Errorf("message of order %d with every nsqd down: %v, want unavailable", groups[i][0].OrderID, err)
		}
	}
}
