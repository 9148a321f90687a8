// Package faults is the fault-injection suite: it runs the service as a real
// process against real MariaDB, Redis and nsqd, puts a load on it, injects
// one fault per scenario (a SIGKILL, a dead nsqd, a database refusing
// connections, lost Redis keys, duplicated messages, client retries,
// overload) and checks from MySQL and Redis directly that the sale's
// invariants hold once it has recovered. Its coupon scenarios do the same
// for claims (a killed instance in a claim storm, a killed Redis Cluster
// master, duplicated messages, retries under one key with MySQL
// connections killed). It has tests only; see docs/RELIABILITY.md for the
// scenarios and their last results.
package faults
