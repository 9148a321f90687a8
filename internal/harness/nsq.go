package harness

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/nsqio/go-nsq"
	"github.com/nsqio/nsq/nsqlookupd"

	"github.com/go-seckill/seckill/internal/testenv"
	"github.com/go-seckill/seckill/store"
)

// StartNSQD runs a real nsqd in the test process on loopback ports, with
// its data in a folder of the test, registering with the nsqlookupd at
// lookupdTCP if any. It exits when the test ends, after the instances
// started later.
func StartNSQD(tb testing.TB, lookupdTCP ...string) *store.EmbeddedNSQD {
	tb.Helper()
	n, err := store.StartNSQD(tb.TempDir(), "127.0.0.1:0", "127.0.0.1:0", Logger(tb), lookupdTCP...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(n.Exit)
	return n
}

// NSQLookupd is a real nsqlookupd running in the test process.
type NSQLookupd struct{ l *nsqlookupd.NSQLookupd }

// StartNSQLookupd runs an nsqlookupd on loopback ports until the test ends.
func StartNSQLookupd(tb testing.TB) *NSQLookupd {
	tb.Helper()
	opts := nsqlookupd.NewOptions()
	opts.TCPAddress, opts.HTTPAddress, opts.BroadcastAddress = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1"
	opts.LogLevel = 3 // warn
	opts.Logger = log.New(testenv.LogWriter(tb), "nsqlookupd: ", 0)
	l, err := nsqlookupd.New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	go l.Main()
	tb.Cleanup(l.Exit)
	return &NSQLookupd{l}
}

// TCPAddr is where nsqd registers.
func (l *NSQLookupd) TCPAddr() string { return l.l.RealTCPAddr().String() }

// HTTPAddr is where consumers ask for the nsqd of a topic.
func (l *NSQLookupd) HTTPAddr() string { return l.l.RealHTTPAddr().String() }

// Publish sends bodies to topic on the nsqd at tcpAddr, as any producer
// would: the service's messages are JSON on the wire.
func Publish(tb testing.TB, tcpAddr, topic string, bodies ...[]byte) {
	tb.Helper()
	p, err := nsq.NewProducer(tcpAddr, nsq.NewConfig())
	if err != nil {
		tb.Fatal(err)
	}
	p.SetLogger(log.New(testenv.LogWriter(tb), "producer: ", 0), nsq.LogLevelWarning)
	defer p.Stop()
	for _, b := range bodies {
		if err := p.Publish(topic, b); err != nil {
			tb.Fatalf("publish to %s on %s: %v", topic, tcpAddr, err)
		}
	}
}

// TopicStats are one topic's counters, and its channels', as nsqd's HTTP
// API reports them.
type TopicStats struct {
	MessageCount uint64 `json:"message_count"`
	Channels     map[string]ChannelStats
}

// ChannelStats are one channel's counters.
type ChannelStats struct {
	Depth         int64  `json:"depth"`
	InFlightCount int    `json:"in_flight_count"`
	DeferredCount int    `json:"deferred_count"`
	MessageCount  uint64 `json:"message_count"`
	RequeueCount  uint64 `json:"requeue_count"`
	TimeoutCount  uint64 `json:"timeout_count"`
	Clients       []struct {
		FinishCount uint64 `json:"finish_count"`
	} `json:"clients"`
}

// Finished is how many messages the channel's connected clients acknowledged.
func (c ChannelStats) Finished() uint64 {
	var n uint64
	for _, cl := range c.Clients {
		n += cl.FinishCount
	}
	return n
}

// Idle says the channel holds nothing: no message queued, in flight or deferred.
func (c ChannelStats) Idle() bool {
	return c.Depth == 0 && c.InFlightCount == 0 && c.DeferredCount == 0
}

var nsqdHTTP = &http.Client{Timeout: 5 * time.Second}

// NSQDStats reads topic's counters from the nsqd whose HTTP API is at
// httpAddr. A topic nsqd does not have yet reads as zero.
func NSQDStats(httpAddr, topic string) (TopicStats, error) {
	resp, err := nsqdHTTP.Get("http://" + httpAddr + "/stats?format=json&topic=" + url.QueryEscape(topic))
	if err != nil {
		return TopicStats{}, err
	}
	defer resp.Body.Close()
	var st struct {
		Topics []struct {
			Name         string `json:"topic_name"`
			MessageCount uint64 `json:"message_count"`
			Channels     []struct {
				Name string `json:"channel_name"`
				ChannelStats
			} `json:"channels"`
		} `json:"topics"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return TopicStats{}, fmt.Errorf("nsqd %s stats: %w", httpAddr, err)
	}
	out := TopicStats{Channels: map[string]ChannelStats{}}
	for _, t := range st.Topics {
		if t.Name != topic {
			continue
		}
		out.MessageCount = t.MessageCount
		for _, c := range t.Channels {
			out.Channels[c.Name] = c.ChannelStats
		}
	}
	return out, nil
}

// NSQDChannel reads one channel's counters; a channel nsqd does not have is
// an error.
func NSQDChannel(httpAddr, topic, channel string) (ChannelStats, error) {
	st, err := NSQDStats(httpAddr, topic)
	if err != nil {
		return ChannelStats{}, err
	}
	c, ok := st.Channels[channel]
	if !ok {
		return ChannelStats{}, fmt.Errorf("nsqd %s has no channel %s/%s", httpAddr, topic, channel)
	}
	return c, nil
}

// EmptyChannel drops every message waiting on a channel of the nsqd whose
// HTTP API is at httpAddr: messages an nsqd lost.
func EmptyChannel(httpAddr, topic, channel string) error {
	return nsqdAction(httpAddr, "empty", topic, channel)
}

// PauseChannel stops (pause) or resumes the delivery of a channel's
// messages on the nsqd whose HTTP API is at httpAddr; they queue meanwhile.
func PauseChannel(httpAddr, topic, channel string, pause bool) error {
	action := "unpause"
	if pause {
		action = "pause"
	}
	// Made first, so that a channel whose consumer has not subscribed yet
	// can be paused too (nsqd makes the topic with it).
	if err := nsqdPost("http://" + httpAddr + "/topic/create?topic=" + url.QueryEscape(topic)); err != nil {
		return err
	}
	if err := nsqdAction(httpAddr, "create", topic, channel); err != nil {
		return err
	}
	return nsqdAction(httpAddr, action, topic, channel)
}

// nsqdAction posts /channel/<action> for topic's channel to an nsqd.
func nsqdAction(httpAddr, action, topic, channel string) error {
	return nsqdPost("http://" + httpAddr + "/channel/" + action + "?topic=" + url.QueryEscape(topic) + "&channel=" + url.QueryEscape(channel))
}

// nsqdPost posts to one of nsqd's HTTP actions.
func nsqdPost(u string) error {
	resp, err := nsqdHTTP.Post(u, "", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("nsqd %s: %d %s", u, resp.StatusCode, body)
	}
	return nil
}
