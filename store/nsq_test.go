package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
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
	got, _ := readArrays(t, n.TCPAddr(), topic, len(ms), func(m service.StockMessage) string { return fmt.Sprint(m.OrderID) })
	for _, m := range ms {
		if n := got[fmt.Sprint(m.OrderID)]; n != 1 {
			t.Errorf("order %d delivered %d times, want once", m.OrderID, n)
		}
	}

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

// Sales (the stock topic's messages) and V13's accepted requests published
// at once share messages: under load the reader gets, and finishes, one
// message for many. Each is delivered once.
func TestSalesAndAcceptedRequestsPublishedTogetherShareMessages(t *testing.T) {
	t.Run("sales", func(t *testing.T) {
		publishedTogether(t, func(p *Publisher, i int) error {
			return p.Publish(context.Background(), service.StockMessage{OrderID: int64(i + 1), GoodsID: 1, UserID: 1, Number: 1}, int64(i))
		}, func(m service.StockMessage) string { return fmt.Sprint(m.OrderID - 1) })
	})
	t.Run("accepted requests", func(t *testing.T) {
		publishedTogether(t, func(p *Publisher, i int) error {
			return p.PublishAccepted(context.Background(), service.Accepted{Token: fmt.Sprint(i), Number: 1})
		}, func(a service.Accepted) string { return a.Token })
	})
}

// publishedTogether publishes 200 items at once with publish (the ith
// item's key is i) and reads them back.
func publishedTogether[T any](t *testing.T, publish func(p *Publisher, i int) error, key func(T) string) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := StartNSQD(t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Exit()
	const topic = "together"
	p, err := NewPublisher([]string{n.TCPAddr()}, PublisherTopics{Stock: topic, Accept: topic}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	const items = 200
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if err := publish(p, i); err != nil {
				t.Error(err)
			}
		}()
	}
	close(start)
	wg.Wait()

	got, messages := readArrays(t, n.TCPAddr(), topic, items, key)
	for i := range items {
		if got[fmt.Sprint(i)] != 1 {
			t.Errorf("item %d delivered %d times, want once", i, got[fmt.Sprint(i)])
		}
	}
	t.Logf("%d items in %d messages", items, messages)
	if messages >= items/2 {
		t.Errorf("%d items published together went in %d messages; want them sharing messages", items, messages)
	}
}

// readArrays reads topic on nsqd at addr until want distinct items came:
// each message is one JSON value of T or an array of them. It returns how
// many times each item (by key) came, and in how many messages.
func readArrays[T any](t *testing.T, addr, topic string, want int, key func(T) string) (got map[string]int, messages int) {
	t.Helper()
	got = map[string]int{}
	var mu sync.Mutex
	c, err := nsq.NewConsumer(topic, "test", nsq.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	c.SetLogger(nil, nsq.LogLevelError)
	c.AddHandler(nsq.HandlerFunc(func(m *nsq.Message) error {
		var vs []T
		if m.Body[0] != '[' {
			var v T
			if err := json.Unmarshal(m.Body, &v); err != nil {
				return err
			}
			vs = append(vs, v)
		} else if err := json.Unmarshal(m.Body, &vs); err != nil {
			return err
		}
		mu.Lock()
		messages++
		for _, v := range vs {
			got[key(v)]++
		}
		mu.Unlock()
		return nil
	}))
	if err := c.ConnectToNSQD(addr); err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		done := len(got) >= want
		mu.Unlock()
		if done {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	return maps.Clone(got), messages
}
