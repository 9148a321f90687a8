package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nsqio/go-nsq"
	"github.com/nsqio/nsq/nsqd"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/payment"
)

// Publisher publishes stock messages to one topic on a list of nsqd. A
// go-nsq producer talks to one nsqd and neither fails over nor retries: a
// failed publish is the caller's to handle (the outbox sweep).
type Publisher struct {
	producers      []*nsq.Producer
	topic          string
	timeoutTopic   string
	stockBackTopic string
	couponExpiry   string
	couponChange   string
	goodsChange    string
	checkTopic     string                      // V10's delayed checks
	acceptTopic    string                      // V13's accepted requests
	stocks         []*coalescer[[]byte, error] // per producer, for topic
	accepts        []*coalescer[[]byte, error] // per producer, for acceptTopic
	obs            Observer                    // nil: none
}

// PublisherTopics name the topics a Publisher writes to.
type PublisherTopics struct {
	Stock, Timeout, StockBack  string
	CouponExpiry, CouponChange string
	GoodsChange                string // V9's goods cache invalidations
	Check                      string
	Accept                     string // V13's accepted requests, for the writers
}

// NewPublisher connects one producer per nsqd address. An observer, if
// given, times every publish.
func NewPublisher(addrs []string, topics PublisherTopics, log *slog.Logger, obs ...Observer) (*Publisher, error) {
	if len(addrs) == 0 {
		return nil, fmt.Errorf("no nsqd address to publish to")
	}
	p := &Publisher{topic: topics.Stock, timeoutTopic: topics.Timeout, stockBackTopic: topics.StockBack,
		couponExpiry: topics.CouponExpiry, couponChange: topics.CouponChange, goodsChange: topics.GoodsChange,
		checkTopic: topics.Check, acceptTopic: topics.Accept}
	if len(obs) > 0 {
		p.obs = obs[0]
	}
	for _, addr := range addrs {
		prod, err := nsq.NewProducer(addr, nsq.NewConfig())
		if err != nil {
			p.Stop()
			return nil, fmt.Errorf("nsq producer for %s: %w", addr, err)
		}
		prod.SetLogger(NSQLogger(log), nsq.LogLevelWarning)
		p.producers = append(p.producers, prod)
		p.stocks = append(p.stocks, newArrayPublisher(prod, p.topic, p.observe))
		p.accepts = append(p.accepts, newArrayPublisher(prod, p.acceptTopic, p.observe))
	}
	return p, nil
}

// Publish sends the sale of m to nsqd number route modulo their count, in
// one message with the sales published meanwhile (newArrayPublisher): under
// load the consumer gets, and finishes, one message for many orders. When
// that fails, it goes alone to each of the others in turn.
func (p *Publisher) Publish(ctx context.Context, m service.StockMessage, route int64) error {
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return p.publishTogether(p.stocks, p.topic, body, route)
}

// PublishAccepted hands an accepted request to the writers, on nsqd
// number a.Route modulo their count, in one message with the requests
// accepted meanwhile; when that fails, alone on each of the others in
// turn.
func (p *Publisher) PublishAccepted(ctx context.Context, a service.Accepted) error {
	body, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return p.publishTogether(p.accepts, p.acceptTopic, body, a.Route)
}

// publishTogether publishes body to topic through the coalescer of nsqd
// number route modulo their count, then alone to each of the others.
func (p *Publisher) publishTogether(together []*coalescer[[]byte, error], topic string, body []byte, route int64) error {
	n := int64(len(p.producers))
	first := (route%n + n) % n
	if err := together[first].do(body); err == nil || n == 1 {
		return unavailable(err)
	}
	return p.publish(topic, body, first+1)
}

// DeferTimeouts publishes each group of payment clocks to the
// payment-timeout topic as one message (a JSON array of the orders'
// messages), to be delivered after its delay, at most payment.MaxDefer: a
// payment timeout that is further away arrives early and is deferred again
// by its consumer. Each goes to nsqd number (its first OrderID) modulo
// their count and, when that fails, to each of the others in turn, as
// Publish does; the publishes to one nsqd are sent together, without
// waiting for each answer before the next (go-nsq matches answers to
// commands in order).
func (p *Publisher) DeferTimeouts(ctx context.Context, groups [][]service.StockMessage, delays []time.Duration) []error {
	errs := make([]error, len(groups))
	bodies := make([][]byte, len(groups))
	var left []int // indexes of groups still to publish
	for i, g := range groups {
		if bodies[i], errs[i] = json.Marshal(g); errs[i] == nil && len(g) > 0 {
			left = append(left, i)
		}
	}
	failed := make([][]error, len(groups))
	n := int64(len(p.producers))
	for try := range n {
		if len(left) == 0 {
			break
		}
		start := time.Now()
		done := make(chan *nsq.ProducerTransaction, len(left))
		sent := 0
		var again []int
		for _, i := range left {
			prod := p.producers[((groups[i][0].OrderID%n+n)%n+try)%n]
			if err := prod.DeferredPublishAsync(p.timeoutTopic, min(delays[i], payment.MaxDefer), bodies[i], done, i); err != nil {
				failed[i], again = append(failed[i], err), append(again, i)
				continue
			}
			sent++
		}
		var batchErr error
		for range sent {
			t := <-done
			if i := t.Args[0].(int); t.Error != nil {
				failed[i] = append(failed[i], t.Error)
				again, batchErr = append(again, i), t.Error
			}
		}
		if p.obs != nil {
			p.obs.Observe("nsqd", "deferred_publish", time.Since(start), batchErr)
		}
		left = again
	}
	for i := range groups {
		if len(failed[i]) == int(n) {
			errs[i] = unavailable(errors.Join(failed[i]...))
		}
	}
	return errs
}

// PublishRaw publishes body as it is to topic: a dead letter replayed.
func (p *Publisher) PublishRaw(ctx context.Context, topic string, body []byte) error {
	return p.publish(topic, body, 0)
}

// AnnounceStockBack publishes a stock-back broadcast. Every instance reads
// the topic on a channel of its own, so each one hears it.
func (p *Publisher) AnnounceStockBack(ctx context.Context, goodsID int64) error {
	body, err := json.Marshal(service.StockBack{GoodsID: goodsID})
	if err != nil {
		return err
	}
	return p.publish(p.stockBackTopic, body, goodsID)
}

func (p *Publisher) publish(topic string, body []byte, route int64) error {
	return p.each(route, func(prod *nsq.Producer) error {
		return p.observe("publish", func() error { return prod.Publish(topic, body) })
	})
}

// observe times send, one publish to one nsqd.
func (p *Publisher) observe(op string, send func() error) error {
	if p.obs == nil {
		return send()
	}
	start := time.Now()
	err := send()
	p.obs.Observe("nsqd", op, time.Since(start), err)
	return err
}

// each tries send on nsqd number route modulo their count, then on each of
// the others in turn, until one succeeds.
func (p *Publisher) each(route int64, send func(*nsq.Producer) error) error {
	n := int64(len(p.producers))
	first := (route%n + n) % n
	var errs []error
	for i := range n {
		err := send(p.producers[(first+i)%n])
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return unavailable(errors.Join(errs...))
}

// Ping checks every nsqd answers.
func (p *Publisher) Ping(ctx context.Context) error {
	for _, prod := range p.producers {
		if err := prod.Ping(); err != nil {
			return unavailable(err)
		}
	}
	return nil
}

// Stop closes every producer after its in-flight publishes.
func (p *Publisher) Stop() {
	for _, prod := range p.producers {
		prod.Stop()
	}
}

// EmbeddedNSQD runs a real nsqd inside this process, for a single-instance
// run and for tests.
type EmbeddedNSQD struct {
	n *nsqd.NSQD
}

// StartNSQD starts an nsqd listening on tcpAddr and httpAddr (":0" ports
// pick free ones), keeping its queues in dataDir and registering with the
// nsqlookupd at lookupdTCP, if any.
func StartNSQD(dataDir, tcpAddr, httpAddr string, log *slog.Logger, lookupdTCP ...string) (*EmbeddedNSQD, error) {
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("nsqd data dir: %w", err)
	}
	opts := nsqd.NewOptions()
	opts.DataPath = dataDir
	opts.TCPAddress = tcpAddr
	opts.HTTPAddress = httpAddr
	opts.HTTPSAddress = ""
	opts.BroadcastAddress = "127.0.0.1"
	opts.NSQLookupdTCPAddresses = lookupdTCP
	opts.LogLevel = 3 // warn
	opts.Logger = NSQLogger(log)
	n, err := nsqd.New(opts)
	if err != nil {
		return nil, fmt.Errorf("start embedded nsqd: %w", err)
	}
	go func() {
		if err := n.Main(); err != nil {
			log.Error("embedded nsqd stopped", "err", err)
		}
	}()
	return &EmbeddedNSQD{n: n}, nil
}

// TCPAddr is the address producers and consumers connect to.
func (e *EmbeddedNSQD) TCPAddr() string { return e.n.RealTCPAddr().String() }

// HTTPAddr is nsqd's HTTP API.
func (e *EmbeddedNSQD) HTTPAddr() string { return e.n.RealHTTPAddr().String() }

// ChannelDepth is one channel's backlog on an nsqd.
type ChannelDepth struct {
	Topic, Channel string
	Depth          int64 // waiting, in memory and on disk
	InFlight       int   // delivered, not yet finished
	Deferred       int   // waiting for their time (payment timeouts, expiries)
}

// Depths are the backlogs of every channel of this nsqd.
func (e *EmbeddedNSQD) Depths() []ChannelDepth {
	var out []ChannelDepth
	for _, t := range e.n.GetStats("", "", false).Topics {
		for _, c := range t.Channels {
			out = append(out, ChannelDepth{Topic: t.TopicName, Channel: c.ChannelName, Depth: c.Depth, InFlight: c.InFlightCount, Deferred: c.DeferredCount})
		}
	}
	return out
}

// Exit flushes queues to disk and stops. Stop clients first.
func (e *EmbeddedNSQD) Exit() { e.n.Exit() }

// NSQLogger routes nsqd's and go-nsq's log lines to log at their own
// levels: go-nsq starts a line with DBG, INF, WRN or ERR, nsqd with
// "DEBUG:", "INFO:", "WARNING:", "ERROR:" or "FATAL:". The level word is
// taken off the message; a line with none is logged at info.
func NSQLogger(log *slog.Logger) nsqLogger { return nsqLogger{log} }

type nsqLogger struct{ log *slog.Logger }

func (l nsqLogger) Output(_ int, s string) error {
	level, msg := nsqLevel(strings.TrimSpace(s))
	l.log.Log(context.Background(), level, msg, "component", "nsq")
	return nil
}

// nsqLevels are the level words of go-nsq (DBG...) and of nsqd (DEBUG:...).
var nsqLevels = []struct {
	prefix string
	level  slog.Level
}{
	{"DBG ", slog.LevelDebug}, {"INF ", slog.LevelInfo}, {"WRN ", slog.LevelWarn}, {"ERR ", slog.LevelError},
	{"DEBUG: ", slog.LevelDebug}, {"INFO: ", slog.LevelInfo}, {"WARNING: ", slog.LevelWarn},
	{"ERROR: ", slog.LevelError}, {"FATAL: ", slog.LevelError},
}

// nsqLevel splits a line of nsq's into its level and its message.
func nsqLevel(line string) (slog.Level, string) {
	for _, l := range nsqLevels {
		if rest, ok := strings.CutPrefix(line, l.prefix); ok {
			return l.level, strings.TrimSpace(rest)
		}
	}
	return slog.LevelInfo, line
}
