// Package framework is egret's Mesos framework for Heron topologies: a
// long-running scheduler on the Mesos v1 scheduler HTTP API that runs one
// Mesos task per Heron container (container 0 included), each under its own
// `egret executor`.
//
// The pieces, from the inside out:
//   - match.go: which offer a waiting container takes and which resources it
//     carves from it (cpus, mem, disk and ports, fragmented ranges too);
//   - tasks.go: task ids, the per-container state machine and the decisions
//     it makes (relaunch or not, backoff and budget, suppress or revive);
//   - engine.go: the event loop on the master's subscription stream
//     (subscribe with a saved framework id, follow the leader, reconcile,
//     accept, decline, kill, acknowledge, teardown);
//   - the Heron side (framework.go, api.go, client.go): the topology's state,
//     the scheduler HTTP API and the CLI's client.
package framework
