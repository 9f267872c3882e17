// Package localsched is egret's local scheduler: it runs a Heron topology on
// one machine, one `egret heron-executor` per container (container 0 included),
// each in its own sandbox under the topology's working directory.
//
// Two halves live here. The daemon (`egret scheduler`, Run) is started
// detached by submit, one per topology, guarded by a lock file in the working
// directory. It starts the executors so that they outlive it, restarts a dead
// one with backoff and a budget, adopts the executors that still run when it is
// itself restarted, registers its SchedulerLocation and serves Heron's
// scheduler API (POST /kill, /restart, /update with protobuf bodies) plus a
// JSON status. The client (Client) is what the `egret` topology commands call:
// submit, activate, deactivate, restart, kill, update, status, list and logs.
package localsched
