// Package reshard doubles the hosts of V7's logical databases while
// instances keep selling: `seckill reshard`. Logical database l lives on
// host number l % n of mysql.v7_hosts when n hosts are in use; doubling n
// moves exactly the logical databases whose bit n is set (half of them),
// each from host l % n to host l % 2n, and no row changes its address.
//
// Each move: announce the target in the map and wait until every running
// instance holds it (so that none will fail to reach it after the switch);
// copy the rows of its order and coupon tables; catch up with the writes made meanwhile (checksums per
// table, row-by-row where they differ); freeze the logical database on its
// old host (the writes in flight finish, later ones wait); catch up once
// more and verify row counts and checksums; switch the map; wait until
// every running instance holds the new map; delete the old copy. Every
// step can be run again: after a crash, the command is run again with the
// same target and goes on from what the map and the hosts say.
package reshard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/go-seckill/seckill/service"
	"github.com/go-seckill/seckill/store"
)

// Options tune an expansion.
type Options struct {
	// Hosts is the host count after it, a power of two up to the number of
	// logical databases; 0 doubles the hosts in use.
	Hosts  int
	DryRun bool
	// AckTimeout bounds each wait for the running instances to hold a new
	// map; Settle is waited after they all do, before the old copy goes,
	// for requests that read the map just before.
	AckTimeout, Settle time.Duration
	// CatchUps is how many catch-up passes run before the freeze.
	CatchUps int
	// Step, when set, is called after each step of a move ("copied",
	// "frozen", "switched"); an error stops the run there, as a crash
	// would. Tests stop runs with it.
	Step func(l int, step string) error
}

// Move is one logical database's move and what it took.
type Move struct {
	DB       int
	From, To string
	Copied   int64         // rows copied before the freeze
	CaughtUp int64         // rows copied again or deleted by the catch-ups
	Frozen   time.Duration // from the freeze to the switch
	FrozenAt time.Time     // when the freeze began
	Rows     int64         // rows verified on the new host
	Tables   int           // tables verified: its order and coupon tables
	Deleted  int64         // rows deleted from the old host
	Done     bool          // finished before this run
}

// Plan is the moves of an expansion to Hosts hosts.
type Plan struct {
	Hosts []string // the hosts in use after it, by id
	Moves []Move
}

// Store is what an expansion needs of the database.
type Store interface {
	LogicalHostIDs() []string
	ShardMap() store.ShardMap
	RefreshShardMap(ctx context.Context) (int64, error)
	ClaimAll(ctx context.Context) error
	LockResharding(ctx context.Context) (func(), bool, error)
	AnnounceMove(ctx context.Context, l int, from, to string) (int64, error)
	SwitchMove(ctx context.Context, l int, from, to string) (int64, error)
	FinishMove(ctx context.Context, l int, host string) (int64, error)
	PrepareTarget(ctx context.Context, l int, host string) error
	SetFrozen(ctx context.Context, l int, host string, frozen bool) error
	CopyLogical(ctx context.Context, l int, from, to string) (int64, error)
	SyncLogical(ctx context.Context, l int, from, to string, verify bool) (int64, []store.TableSum, error)
	DeleteLogical(ctx context.Context, l int, host string) (int64, error)
}

// Acks tells which running instances do not hold an epoch of the map yet.
type Acks interface {
	ShardMapLaggards(ctx context.Context, epoch int64) ([]int64, error)
}

// MakePlan says which logical databases move where to reach opts.Hosts
// hosts. A logical database without tables yet counts as on the first
// host, where its first write would make them.
func MakePlan(s Store, hosts int) (Plan, error) {
	ids := s.LogicalHostIDs()
	m := s.ShardMap()
	inUse := map[string]bool{}
	for _, p := range m.DBs {
		inUse[cmpOr(p.Host, ids[0])] = true
	}
	if hosts == 0 {
		hosts = 2 * len(inUse)
	}
	switch {
	case hosts < 1 || hosts > service.LogicalDBs || hosts&(hosts-1) != 0:
		return Plan{}, fmt.Errorf("%d hosts: the logical databases spread over 1, 2, 4 or %d hosts", hosts, service.LogicalDBs)
	case hosts > len(ids):
		return Plan{}, fmt.Errorf("%d hosts wanted, and mysql.v7_hosts names %d: add the new hosts to every instance's configuration first", hosts, len(ids))
	}
	plan := Plan{Hosts: ids[:hosts]}
	for l, p := range m.DBs {
		to := ids[l%hosts]
		host := cmpOr(p.Host, ids[0])
		switch {
		case host != to:
			plan.Moves = append(plan.Moves, Move{DB: l, From: host, To: to})
		case p.Target != "":
			// Switched by a run that stopped before deleting the old copy.
			plan.Moves = append(plan.Moves, Move{DB: l, From: p.Target, To: to})
		}
	}
	return plan, nil
}

// Run carries out the expansion to opts.Hosts hosts, writing what it does
// to out, and returns the moves it made.
func Run(ctx context.Context, s Store, acks Acks, opts Options, out io.Writer) (Plan, error) {
	if _, err := s.RefreshShardMap(ctx); err != nil {
		return Plan{}, err
	}
	plan, err := MakePlan(s, opts.Hosts)
	if err != nil {
		return plan, err
	}
	printPlan(out, s, plan)
	if opts.DryRun {
		return plan, nil
	}
	release, held, err := s.LockResharding(ctx)
	if err != nil {
		return plan, err
	}
	if !held {
		return plan, errors.New("another expansion is running against this primary")
	}
	defer release()
	if err := s.ClaimAll(ctx); err != nil {
		return plan, fmt.Errorf("make every logical database's tables: %w", err)
	}
	if plan, err = MakePlan(s, opts.Hosts); err != nil {
		return plan, err
	}
	r := runner{s: s, acks: acks, opts: opts, out: out}
	for i := range plan.Moves {
		if err := r.move(ctx, &plan.Moves[i]); err != nil {
			return plan, fmt.Errorf("logical database %d (%s -> %s): %w; run the command again to resume",
				plan.Moves[i].DB, plan.Moves[i].From, plan.Moves[i].To, err)
		}
	}
	fmt.Fprintf(out, "done: %d logical databases on %d hosts\n", service.LogicalDBs, len(plan.Hosts))
	return plan, nil
}

func printPlan(out io.Writer, s Store, plan Plan) {
	m := s.ShardMap()
	fmt.Fprintf(out, "plan: %d logical databases onto %d hosts (%v), %d to move\n", service.LogicalDBs, len(plan.Hosts), plan.Hosts, len(plan.Moves))
	for l := range service.LogicalDBs {
		i := slices.IndexFunc(plan.Moves, func(mv Move) bool { return mv.DB == l })
		host := cmpOr(m.DBs[l].Host, "(no tables yet) "+s.LogicalHostIDs()[0])
		if i < 0 {
			fmt.Fprintf(out, "  l%d stays on %s\n", l, host)
			continue
		}
		fmt.Fprintf(out, "  l%d moves %s -> %s\n", l, plan.Moves[i].From, plan.Moves[i].To)
	}
}

type runner struct {
	s    Store
	acks Acks
	opts Options
	out  io.Writer
}

func (r runner) step(l int, name string) error {
	if r.opts.Step == nil {
		return nil
	}
	return r.opts.Step(l, name)
}

func (r runner) logf(format string, a ...any) { fmt.Fprintf(r.out, format+"\n", a...) }

// move takes one logical database from mv.From to mv.To, from whatever
// step a previous run reached.
func (r runner) move(ctx context.Context, mv *Move) error {
	l := mv.DB
	place := r.s.ShardMap().DBs[l]
	if place.Host != mv.To {
		if err := r.copyAndSwitch(ctx, mv, place); err != nil {
			return err
		}
	} else {
		mv.Done = place.Target == ""
		if mv.Done {
			return nil
		}
		r.logf("l%d: switched by an earlier run; its old copy on %s is still to delete", l, mv.From)
		if err := r.awaitAll(ctx, r.s.ShardMap().Epoch); err != nil {
			return err
		}
	}
	time.Sleep(r.opts.Settle)
	n, err := r.s.DeleteLogical(ctx, l, mv.From)
	mv.Deleted = n
	if err != nil {
		return fmt.Errorf("delete the old copy: %w", err)
	}
	if _, err := r.s.FinishMove(ctx, l, mv.To); err != nil {
		return err
	}
	r.logf("l%d: deleted %d rows from %s; done", l, n, mv.From)
	return nil
}

func (r runner) copyAndSwitch(ctx context.Context, mv *Move, place store.LogicalPlace) error {
	l := mv.DB
	if place.Target != mv.To {
		epoch, err := r.s.AnnounceMove(ctx, l, mv.From, mv.To)
		if err != nil {
			return err
		}
		if epoch == 0 {
			return errors.New("the map changed meanwhile")
		}
	}
	// Every instance must reach the new host before it is switched to.
	if err := r.awaitAll(ctx, r.s.ShardMap().Epoch); err != nil {
		return err
	}
	if err := r.s.PrepareTarget(ctx, l, mv.To); err != nil {
		return err
	}
	start := time.Now()
	n, err := r.s.CopyLogical(ctx, l, mv.From, mv.To)
	mv.Copied = n
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	r.logf("l%d: copied %d rows to %s in %v", l, n, mv.To, time.Since(start).Round(time.Millisecond))
	if err := r.step(l, "copied"); err != nil {
		return err
	}
	for range max(r.opts.CatchUps, 1) {
		n, _, err := r.s.SyncLogical(ctx, l, mv.From, mv.To, false)
		mv.CaughtUp += n
		if err != nil {
			return fmt.Errorf("catch up: %w", err)
		}
		if n == 0 {
			break
		}
	}
	frozen := time.Now()
	mv.FrozenAt = frozen
	if err := r.s.SetFrozen(ctx, l, mv.From, true); err != nil {
		return fmt.Errorf("freeze: %w", err)
	}
	if err := r.step(l, "frozen"); err != nil {
		return err
	}
	epoch, err := r.switchFrozen(ctx, mv)
	mv.Frozen = time.Since(frozen)
	if err != nil {
		// The map still points at the old host: let its buyers write there
		// again; a later run copies what they write.
		if terr := r.s.SetFrozen(context.WithoutCancel(ctx), l, mv.From, false); terr != nil {
			err = errors.Join(err, fmt.Errorf("thaw: %w", terr))
		}
		return err
	}
	r.logf("l%d: frozen %v (from %s): caught up %d rows, verified %d rows in %d tables, switched to %s at epoch %d",
		l, mv.Frozen.Round(time.Millisecond), frozen.UTC().Format(time.RFC3339Nano), mv.CaughtUp, mv.Rows, mv.Tables, mv.To, epoch)
	if err := r.step(l, "switched"); err != nil {
		return err
	}
	return r.awaitAll(ctx, epoch)
}

// switchFrozen catches up with the last writes of a frozen logical
// database, verifying every table's row count and checksum on both hosts
// as it goes, and switches the map to the copy. The freeze lasts this
// long: one checksum of each table on each host, and the rows that differ.
func (r runner) switchFrozen(ctx context.Context, mv *Move) (int64, error) {
	l := mv.DB
	n, sums, err := r.s.SyncLogical(ctx, l, mv.From, mv.To, true)
	mv.CaughtUp += n
	if err != nil {
		return 0, fmt.Errorf("last catch-up: %w", err)
	}
	mv.Rows, mv.Tables = 0, len(sums)
	for _, s := range sums {
		mv.Rows += s.Rows
	}
	epoch, err := r.s.SwitchMove(ctx, l, mv.From, mv.To)
	if err == nil && epoch == 0 {
		err = errors.New("the map changed meanwhile")
	}
	return epoch, err
}

// awaitAll waits until every running instance holds epoch of the map.
func (r runner) awaitAll(ctx context.Context, epoch int64) error {
	deadline := time.Now().Add(r.opts.AckTimeout)
	for {
		behind, err := r.acks.ShardMapLaggards(ctx, epoch)
		if err != nil {
			return err
		}
		if len(behind) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the instances on snowflake nodes %v do not hold epoch %d of the shard map after %v "+
				"(is mysql.v7_hosts the same on every instance?)", behind, epoch, r.opts.AckTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
