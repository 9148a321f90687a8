package config

import "time"

// Accept tunes V13's async accept and poll.
type Accept struct {
	// PollAfter is how long the client is told to wait between polls.
	PollAfter time.Duration `mapstructure:"poll_after"`
	// RescueEvery is how often the sweep writes the requests pending for
	// longer than RescueAfter from their Redis records: their messages are
	// taken as lost.
	RescueEvery time.Duration `mapstructure:"rescue_every"`
	RescueAfter time.Duration `mapstructure:"rescue_after"`
	// WriterBatch is the most requests one writer turns into orders at
	// once: spread over the order tables, a larger batch puts more rows in
	// each table's INSERT.
	WriterBatch int `mapstructure:"writer_batch"`
	// MaxAge is how long a request whose Redis record was lost (a flush)
	// may still reserve its units again when its message comes.
	MaxAge time.Duration `mapstructure:"max_age"`
}

// validateAccept checks V13's settings.
func (c Config) validateAccept(bad func(key, why string)) {
	if c.NSQ.AcceptTopic == "" || c.NSQ.AcceptChannel == "" {
		bad("nsq.accept_topic/nsq.accept_channel", "must not be empty")
	}
	a := c.Accept
	if a.PollAfter < 100*time.Millisecond || a.PollAfter > time.Minute {
		bad("accept.poll_after", "must be from 100ms to 1m")
	}
	// nsqd's --max-rdy-count (2500 by default) bounds the messages in
	// flight to one consumer: consumer.concurrency × writer_batch.
	if a.WriterBatch < 1 || a.WriterBatch*max(c.Consumer.Concurrency, 1) > 2500 {
		bad("accept.writer_batch", "must be at least 1, and times consumer.concurrency at most 2500 (nsqd's --max-rdy-count)")
	}
	if a.RescueEvery <= 0 {
		bad("accept.rescue_every", "must be a positive duration such as 5s")
	}
	// The sweep must not race the writers on requests whose message is
	// merely waiting: it should wait out the write budget at least.
	if a.RescueAfter < c.Order.WriteBudget {
		bad("accept.rescue_after", "must be at least order.write_budget")
	}
	// A failure is remembered for a day (store.failureTTL): a request
	// older than that could be written after it was reported failed.
	if a.MaxAge < a.RescueAfter || a.MaxAge > 12*time.Hour {
		bad("accept.max_age", "must be from accept.rescue_after to 12h")
	}
}
