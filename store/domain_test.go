package store

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/go-seckill/seckill/internal/testenv"
	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/service/ledger"
	"github.com/go-seckill/seckill/service/ordering"
	"github.com/go-seckill/seckill/service/payment"
	"github.com/go-seckill/seckill/service/soldout"
)

// These tests run the units of the domain on the real stores, to show the
// rules that only the databases' own behaviour can break: a write that
// commits after its client has gone, a message naming no order, a sale and
// its cancellation in either order.

// published records stock messages instead of sending them.
type published struct {
	mu   sync.Mutex
	msgs []service.StockMessage
}

func (p *published) Publish(_ context.Context, m service.StockMessage, _ int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.msgs = append(p.msgs, m)
	return nil
}
func (p *published) AnnounceStockBack(context.Context, int64) error { return nil }
func (p *published) DeferTimeouts(_ context.Context, groups [][]service.StockMessage, _ []time.Duration) []error {
	return make([]error, len(groups))
}

// domain is the units on the test's own database and Redis prefix.
type domain struct {
	db       *Database
	redis    *Redis
	pub      *published
	ledger   *ledger.Ledger
	placer   *ordering.Placer
	payments *payment.Payments
}

const testWriteBudget = time.Second

func newDomain(t *testing.T) *domain {
	t.Helper()
	ctx := context.Background()
	dsn := testenv.MySQL(t)
	db, err := OpenDatabase(ctx, dsn, []string{dsn}, 8) // the primary is the one order host too
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	r := openTestRedis(t)
	ids, err := NewIDs(1)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testenv.LogWriter(t), nil))
	d := &domain{db: db, redis: r, pub: &published{}}
	d.ledger = ledger.New(ledgerStores(r, r, db, db, d.pub), ledger.Options{WriteBudget: testWriteBudget, V1Timeout: testWriteBudget / 2, RebuildGrace: time.Second}, log)
	t.Cleanup(d.ledger.Close)
	layout := service.Layout{Tables: service.MaxOrderTables, Hosts: 1}
	d.placer = ordering.New(d.ledger, db, db, d.pub, ids, r.Outcomes(2*testWriteBudget, time.Hour), soldout.New(time.Second),
		ordering.Options{MaxNumber: 10, Layout: layout, PayTimeout: time.Minute}, log)
	d.payments = payment.New(db, d.ledger, nil, layout, log)
	return d
}

func (d *domain) goods(t *testing.T, stock, limit int64) service.Goods {
	t.Helper()
	g, err := d.db.CreateGoods(context.Background(), service.NewGoods{Name: "g", Stock: stock, PerUserLimit: limit})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.redis.Put(context.Background(), g); err != nil {
		t.Fatal(err)
	}
	return g
}

// holdInserts takes a lock that blocks every insert into the orders table
// until release is called: a second session holding a row lock.
func (d *domain) holdInserts(t *testing.T) (release func()) {
	t.Helper()
	ctx := context.Background()
	tx, err := d.db.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var id sql.NullInt64
	if err := tx.QueryRowContext(ctx, "SELECT MAX(id) FROM orders WHERE id > 0 FOR UPDATE").Scan(&id); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() { once.Do(func() { tx.Rollback() }) }
	t.Cleanup(release)
	return release
}

// liveOrders counts the goods' orders that hold units, over every table.
func (d *domain) liveOrders(t *testing.T, goodsID int64) (n int64) {
	t.Helper()
	live, args := liveStatuses()
	err := d.db.eachOrderTable(func(db *sql.DB, at service.OrderTable) error {
		var c int64
		err := db.QueryRow("SELECT COUNT(*) FROM "+at.Name()+" WHERE goods_id = ? AND status IN "+live,
			append([]any{goodsID}, args...)...).Scan(&c)
		n += c
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (d *domain) redisStock(t *testing.T, goodsID int64) int64 {
	t.Helper()
	n, _, err := d.redis.Stock(context.Background(), goodsID)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// "Not found" after a broken write is no proof of absence: MariaDB finishes
// an INSERT whose connection broke once the lock it waited for is free. The
// units of such an order must not be sold again, whenever the write lands.
func TestAnOrderWriteThatCommitsLateIsNeverSoldTwice(t *testing.T) {
	for _, c := range []struct {
		name string
		hold time.Duration // how long the lock outlives the order's write budget
	}{
		{"the lock outlives the fence", 2 * testWriteBudget},
		{"the lock ends while the fence waits", testWriteBudget/2 + testWriteBudget/4},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := newDomain(t)
			ctx := context.Background()
			g := d.goods(t, 1, 0)
			release := d.holdInserts(t)
			timer := time.AfterFunc(c.hold, release)
			defer timer.Stop()
			_, err := d.placer.PlaceOrder(ctx, "V2", service.OrderRequest{UserID: 1, GoodsID: g.ID, Number: 1})
			if err == nil {
				t.Log("the order was written after all")
			}
			<-time.After(c.hold + 500*time.Millisecond) // the lock is gone; a late write has landed by now
			for u := int64(2); u <= 5; u++ {
				if _, err := d.placer.PlaceOrder(ctx, "V2", service.OrderRequest{UserID: u, GoodsID: g.ID, Number: 1}); err == nil {
					t.Logf("user %d bought", u)
				}
			}
			live, stock := d.liveOrders(t, g.ID), d.redisStock(t, g.ID)
			if live+stock > 1 || live > 1 {
				t.Errorf("%d live orders and redis stock %d for 1 unit (first answer: %v)", live, stock, err)
			}
			var unknown *service.UnknownOrder
			if errors.As(err, &unknown) && live == 0 && stock == 0 {
				t.Log("the unit stays reserved for the reconciliation, as promised by outcome_unknown")
			}
		})
	}
}

// One idempotency key yields at most one order, ever: a retry after
// outcome_unknown must not place a second order while the first may still
// be written, and retries racing each other place one order between them.
func TestAnIdempotencyKeyNeverYieldsTwoOrders(t *testing.T) {
	d := newDomain(t)
	ctx := context.Background()
	g := d.goods(t, 10, 0)
	req := service.OrderRequest{UserID: 7, GoodsID: g.ID, Number: 1}
	release := d.holdInserts(t)
	_, err := d.placer.PlaceOrderOnce(ctx, "V2", req, "k")
	var unknown *service.UnknownOrder
	if !errors.As(err, &unknown) {
		t.Fatalf("first answer %v, want an unknown outcome while the insert is held", err)
	}
	// A retry while the write may still land learns nothing new.
	if o, err := d.placer.PlaceOrderOnce(ctx, "V2", req, "k"); err == nil {
		t.Fatalf("a retry while the first write is held placed %s", o.Version)
	}
	release()
	time.Sleep(300 * time.Millisecond) // the held insert lands, or its fence does
	var wg sync.WaitGroup
	ids := make(chan int64, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if o, err := d.placer.PlaceOrderOnce(ctx, "V2", req, "k"); err == nil {
				ids <- o.ID
			}
		}()
	}
	wg.Wait()
	close(ids)
	distinct := map[int64]bool{}
	for id := range ids {
		distinct[id] = true
	}
	if live := d.liveOrders(t, g.ID); live > 1 || len(distinct) > 1 {
		t.Errorf("%d live orders, %d distinct order ids answered for one key", live, len(distinct))
	}
}

// A message is not a fact: one naming an order that exists nowhere, or not
// as it says, changes no stock and is dead-lettered with the reason.
func TestStrayStockMessagesMoveNoStock(t *testing.T) {
	d := newDomain(t)
	ctx := context.Background()
	g := d.goods(t, 5, 0)
	o, err := d.placer.PlaceOrder(ctx, "V3", service.OrderRequest{UserID: 159, GoodsID: g.ID, Number: 2})
	if err != nil {
		t.Fatal(err)
	}
	real := d.pub.msgs[0]
	stray := []service.StockMessage{
		{OrderID: 424242, GoodsID: g.ID, UserID: 1, Number: 5},                        // no such order
		{OrderID: o.ID, GoodsID: g.ID, UserID: 159, Number: 2},                        // the wrong table
		{OrderID: o.ID, GoodsID: g.ID, UserID: 159, Number: 5, Table: real.Table},     // more units than ordered
		{OrderID: o.ID, GoodsID: g.ID, UserID: 160, Number: 2, Table: real.Table},     // another buyer
		{OrderID: o.ID + 1, GoodsID: g.ID, UserID: 159, Number: 1, Table: real.Table}, // an id next to it
		{OrderID: o.ID, GoodsID: g.ID + 1, UserID: 159, Number: 2, Table: real.Table}, // other goods
		{OrderID: o.ID, GoodsID: g.ID, UserID: 159, Number: 2, Table: 99, Host: 3},    // no such host or table
	}
	for i, err := range d.ledger.ApplySales(ctx, stray) {
		if !errors.Is(err, service.ErrInvalid) {
			t.Errorf("stray message %d: %v, want ErrInvalid (dead letter)", i, err)
		}
	}
	st, err := d.db.Stats(ctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.MySQLStock != 5 || st.StockLogs != 0 {
		t.Errorf("stray messages moved stock: %+v", st)
	}
	if errs := d.ledger.ApplySales(ctx, []service.StockMessage{real, real}); errs[0] != nil || errs[1] != nil {
		t.Fatalf("the real message: %v", errs)
	}
	if st, _ = d.db.Stats(ctx, g.ID); st.MySQLStock != 3 || st.StockLogs != 1 {
		t.Errorf("the real message, twice: %+v, want stock 3 and one log", st)
	}
}

// Whatever the order of the sale and the timeout (a stock message lost or
// delayed past the deadline), a cancelled order's units and its buyer's
// limit come back exactly once.
func TestAnOrderCancelledBeforeItsSaleIsAppliedReturnsItsUnitsOnce(t *testing.T) {
	d := newDomain(t)
	ctx := context.Background()
	g := d.goods(t, 5, 1)
	o, err := d.placer.PlaceOrder(ctx, "V4", service.OrderRequest{UserID: 11, GoodsID: g.ID, Number: 1})
	if err != nil {
		t.Fatal(err)
	}
	m := d.pub.msgs[0]
	at := m.At()
	db, table, _ := d.db.table(context.Background(), at)
	if _, err := db.Exec("UPDATE "+table+" SET pay_deadline = ? WHERE id = ?", time.Now().Add(-time.Minute).UTC(), o.ID); err != nil {
		t.Fatal(err)
	}
	// The message is lost: the expiry sweep comes first.
	if _, err := d.payments.SweepExpired(ctx, 0); err != nil {
		t.Fatal(err)
	}
	// Then the outbox sweep's copy of the message applies the sale.
	scanned, err := d.db.ScanOrders(ctx, 0, 1<<62, 10)
	if err != nil || len(scanned) != 1 {
		t.Fatalf("scan: %v %+v", err, scanned)
	}
	if errs := d.ledger.ApplySales(ctx, scanned); errs[0] != nil {
		t.Fatal(errs[0])
	}
	// And the sweep, or the timeout message, again.
	for range 2 {
		if _, err := d.payments.SweepExpired(ctx, 0); err != nil {
			t.Fatal(err)
		}
		if err := d.payments.CancelUnpaid(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	st, err := d.db.Stats(ctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.MySQLStock != 5 || st.MySQLSale != 0 || st.Returns != 1 || d.redisStock(t, g.ID) != 5 {
		t.Errorf("after the cancellation: %+v, redis %d; want stock 5, sale 0, one return, redis 5", st, d.redisStock(t, g.ID))
	}
	if _, err := d.placer.PlaceOrder(ctx, "V4", service.OrderRequest{UserID: 11, GoodsID: g.ID, Number: 1}); err != nil {
		t.Errorf("the buyer's limit did not come back: %v", err)
	}
}

// An order whose sale the database refused cannot be paid, and its buyer
// learns why; one whose sale is not confirmed yet waits.
func TestARefusedOrderCannotBePaid(t *testing.T) {
	d := newDomain(t)
	ctx := context.Background()
	g := d.goods(t, 1, 0)
	// Redis offers more than MySQL holds (a failover lost decrements).
	if err := d.redis.Add(ctx, g.ID, 2, "drift"); err != nil {
		t.Fatal(err)
	}
	var orders []service.Order
	for u := int64(1); u <= 3; u++ {
		o, err := d.placer.PlaceOrder(ctx, "V2", service.OrderRequest{UserID: u, GoodsID: g.ID, Number: 1})
		if err != nil {
			t.Fatal(err)
		}
		orders = append(orders, o)
	}
	if _, err := d.payments.Pay(ctx, orders[0].ID, 1, 0); !errors.Is(err, service.ErrOrderPending) {
		t.Errorf("paying before the sale is confirmed: %v, want ErrOrderPending", err)
	}
	errs := d.ledger.ApplySales(ctx, d.pub.msgs)
	paid, refused := 0, 0
	for i, o := range orders {
		_, err := d.payments.Pay(ctx, o.ID, o.UserID, 0)
		switch {
		case err == nil:
			paid++
		case errors.Is(err, service.ErrOrderRefused) && errors.Is(errs[i], service.ErrInvalid):
			refused++
		default:
			t.Errorf("order %d: pay %v, apply %v", i, err, errs[i])
		}
	}
	if paid != 1 || refused != 2 {
		t.Errorf("%d paid, %d refused; want 1 paid for the 1 unit MySQL holds", paid, refused)
	}
}

// V1 answers within its deadline when MySQL stalls: a session holding the
// goods row lock must not hold the request, its connection and the Redis
// reservation for long, and a V1 order that timed out sells nothing.
func TestV1AnswersWithinItsDeadlineWhenTheGoodsRowIsLocked(t *testing.T) {
	d := newDomain(t)
	ctx := context.Background()
	g := d.goods(t, 3, 0)
	tx, err := d.db.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec("UPDATE goods SET name = name WHERE id = ?", g.ID); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = d.placer.PlaceOrder(ctx, "V1", service.OrderRequest{UserID: 1, GoodsID: g.ID, Number: 1})
	took := time.Since(start)
	if err == nil || took > testWriteBudget+time.Second {
		t.Errorf("V1 under a held row lock: %v after %v; want an error within its deadline (%v) and the settling", err, took, testWriteBudget/2)
	}
	tx.Rollback()
	if live, stock := d.liveOrders(t, g.ID), d.redisStock(t, g.ID); live+stock != 3 {
		t.Errorf("after the timed-out V1 order: %d live orders, redis %d; want them to add up to 3", live, stock)
	}
}

// A claimed idempotency key whose instance died mid-request answers "in
// progress" only for the claim's short lifetime, not for the answer's.
func TestAnAbandonedIdempotencyClaimExpires(t *testing.T) {
	r := openTestRedis(t)
	ctx := context.Background()
	out := r.Outcomes(200*time.Millisecond, time.Hour)
	if _, claimed, err := out.Claim(ctx, "u:k", []byte(`{"pending":true}`)); err != nil || !claimed {
		t.Fatalf("first claim: %v %v", claimed, err)
	}
	if _, claimed, _ := out.Claim(ctx, "u:k", []byte(`{"pending":true}`)); claimed {
		t.Fatal("a live claim was claimed twice")
	}
	time.Sleep(300 * time.Millisecond)
	if _, claimed, err := out.Claim(ctx, "u:k", []byte(`{"pending":true}`)); err != nil || !claimed {
		t.Errorf("a claim abandoned past its lifetime still blocks the key: %v %v", claimed, err)
	}
	if err := out.Settle(ctx, "u:k", []byte(`{"order":{}}`)); err != nil {
		t.Fatal(err)
	}
	if ttl := r.c.PTTL(ctx, r.prefix+"idem:u:k").Val(); ttl < time.Minute {
		t.Errorf("a settled answer lives %v, want the answer's lifetime", ttl)
	}
}

// A key answers one request: reused for another, it is refused; a
// refusal that stops being true (sold out) is not replayed.
func TestAnIdempotencyKeyAnswersOneRequest(t *testing.T) {
	d := newDomain(t)
	ctx := context.Background()
	g := d.goods(t, 1, 0)
	o, err := d.placer.PlaceOrderOnce(ctx, "V2", service.OrderRequest{UserID: 3, GoodsID: g.ID, Number: 1}, "k1")
	if err != nil {
		t.Fatal(err)
	}
	if again, err := d.placer.PlaceOrderOnce(ctx, "V2", service.OrderRequest{UserID: 3, GoodsID: g.ID, Number: 1}, "k1"); err != nil || again.ID != o.ID {
		t.Errorf("the same request again: %v %v, want order %d", again.ID, err, o.ID)
	}
	for _, other := range []struct {
		version string
		req     service.OrderRequest
	}{
		{"V2", service.OrderRequest{UserID: 3, GoodsID: g.ID, Number: 2}},
		{"V3", service.OrderRequest{UserID: 3, GoodsID: g.ID, Number: 1}},
		{"V2", service.OrderRequest{UserID: 3, GoodsID: g.ID + 1, Number: 1}},
	} {
		if _, err := d.placer.PlaceOrderOnce(ctx, other.version, other.req, "k1"); !errors.Is(err, service.ErrKeyMismatch) {
			t.Errorf("key reused for %s %+v: %v, want ErrKeyMismatch", other.version, other.req, err)
		}
	}
	if _, err := d.placer.PlaceOrderOnce(ctx, "V2", service.OrderRequest{UserID: 4, GoodsID: g.ID, Number: 1}, "k2"); !errors.Is(err, service.ErrSoldOut) {
		t.Fatalf("sold out: %v", err)
	}
	if err := d.redis.Add(ctx, g.ID, 1, "restock"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.placer.PlaceOrderOnce(ctx, "V2", service.OrderRequest{UserID: 4, GoodsID: g.ID, Number: 1}, "k2"); err != nil {
		t.Errorf("after a restock the retry got %v; a stored sold_out must not outlive the stock's return", err)
	}
}

// ledgerStores are the ledger's ports on a cache (gate, moves, mends,
// locker), the database's sales, records and truths, its orders and an
// announcer.
func ledgerStores(cache interface {
	ledger.Gate
	ledger.Moves
	ledger.Mends
}, locker ledger.Locker, db *Database, records interface {
	ledger.Records
	ledger.Truths
}, announce ledger.Announcer) ledger.Stores {
	return ledger.Stores{Gate: cache, Moves: cache, Mends: cache, Locker: locker,
		Sales: db, Records: records, Truths: records, Orders: db, Announcer: announce}
}

// A retry under an Idempotency-Key after Redis lost its record of the key
// (restarted without persistence) finds the key's order in the database,
// whatever the version, instead of placing a second one; the units the
// retry took go back.
func TestAnIdempotencyKeyOutlivesRedisLosingIt(t *testing.T) {
	d := newDomain(t)
	ctx := context.Background()
	g := d.goods(t, 10, 0)
	for _, v := range []string{"V1", "V2", "V4"} {
		req := service.OrderRequest{UserID: 21, GoodsID: g.ID, Number: 1}
		o, err := d.placer.PlaceOrderOnce(ctx, v, req, "k-"+v)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.redis.c.Del(ctx, d.redis.prefix+"idem:21:k-"+v).Err(); err != nil {
			t.Fatal(err)
		}
		again, err := d.placer.PlaceOrderOnce(ctx, v, req, "k-"+v)
		if err != nil || again.ID != o.ID || again.Version != v {
			t.Errorf("%s: the retry after Redis lost the key got %d %s, %v; want order %d", v, again.ID, again.Version, err, o.ID)
		}
	}
	if live, stock := d.liveOrders(t, g.ID), d.redisStock(t, g.ID); live != 3 || stock != 7 {
		t.Errorf("%d live orders, redis stock %d; want 3 orders and 7 units left", live, stock)
	}
}
