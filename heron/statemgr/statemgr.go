// Package statemgr keeps Heron's state tree, on the local file system or in ZooKeeper, where
// Heron's own daemons and tools look for it:
//
//	<root>/{topologies,packingplans,pplans,executionstate,tmanagers,metricscaches,
//	        schedulers,statefulcheckpoints,locks}/<topology>
//
// Each node holds the protobuf bytes of one message of package model. Both implementations
// follow Heron's rules: topologies, executionstate and pplans are created once (Set fails
// with ErrExists); packingplans, the locations and statefulcheckpoints are overwritten; the
// locations (tmanagers, metricscaches, schedulers) are ephemeral in ZooKeeper and re-created
// by their owner after a session expiry.
package statemgr

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	"egret/config"
	"egret/heron/model"
)

// Kind is one of Heron's state directories.
type Kind string

// Heron's state directories, in the order Heron creates them.
const (
	Topologies          Kind = "topologies"
	PackingPlans        Kind = "packingplans"
	PhysicalPlans       Kind = "pplans"
	ExecutionStates     Kind = "executionstate"
	TManagers           Kind = "tmanagers"
	MetricsCaches       Kind = "metricscaches"
	Schedulers          Kind = "schedulers"
	StatefulCheckpoints Kind = "statefulcheckpoints"
	Locks               Kind = "locks"
	// Frameworks is egret's own: the Mesos framework's record of a topology (framework id,
	// tasks, package), so that a restarted `egret framework` re-subscribes as the same
	// framework. Heron's tools ignore the directory.
	Frameworks Kind = "frameworks"
)

// Kinds lists every directory of the tree.
var Kinds = []Kind{Topologies, PackingPlans, PhysicalPlans, ExecutionStates, TManagers,
	MetricsCaches, Schedulers, StatefulCheckpoints, Locks, Frameworks}

// Overwritable reports whether Set replaces an existing node of kind k (Heron's local
// file-system policy, which egret applies to both implementations).
func (k Kind) Overwritable() bool {
	switch k {
	case Topologies, ExecutionStates, PhysicalPlans, Locks:
		return false
	}
	return true
}

// Ephemeral reports whether nodes of kind k vanish with their owner's ZooKeeper session.
// Schedulers are ephemeral only when the scheduler runs as a service (Heron's
// heron.scheduler.is.service, default true); the ZooKeeper manager takes that from config.
func (k Kind) Ephemeral() bool {
	switch k {
	case TManagers, MetricsCaches, Schedulers:
		return true
	}
	return false
}

func (k Kind) valid() bool {
	for _, x := range Kinds {
		if x == k {
			return true
		}
	}
	return false
}

var (
	// ErrNotFound: the node does not exist.
	ErrNotFound = errors.New("no such node")
	// ErrExists: the node exists and its kind may not be overwritten.
	ErrExists = errors.New("node already exists")
	// ErrClosed: the state manager was closed.
	ErrClosed = errors.New("state manager closed")
	// ErrUnavailable: the backing store (ZooKeeper) could not be reached in time.
	ErrUnavailable = errors.New("state store unavailable")
)

// StateManager is Heron's state tree. Nodes are named by kind and topology name; values are
// the serialized protobuf messages (use the typed helpers, such as PackingPlan and
// SetPackingPlan). Every method honours ctx: a store that cannot be reached yields an error
// wrapping ErrUnavailable when ctx ends, never a hang.
type StateManager interface {
	// Get returns the node's bytes, or an error wrapping ErrNotFound.
	Get(ctx context.Context, kind Kind, topology string) ([]byte, error)
	// Set creates the node, or replaces it if its kind is Overwritable; otherwise an
	// existing node yields ErrExists. Ephemeral kinds are owned by this manager: in ZooKeeper
	// they vanish with its session and it re-creates them after a session expiry.
	Set(ctx context.Context, kind Kind, topology string, data []byte) error
	// Replace writes the node whatever its kind (Heron's delete-then-create, used to rewrite
	// a packing plan on update or a physical plan on activate).
	Replace(ctx context.Context, kind Kind, topology string, data []byte) error
	// Delete removes the node; a missing node is not an error.
	Delete(ctx context.Context, kind Kind, topology string) error
	// List returns the topology names that have a node of kind, sorted.
	List(ctx context.Context, kind Kind) ([]string, error)
	// Watch signals on the returned channel (capacity 1, coalescing) after each change to the
	// node: creation, new data, deletion. Re-read with Get. The channel is closed when ctx
	// ends or the manager closes. Changes are seen within a second.
	Watch(ctx context.Context, kind Kind, topology string) (<-chan struct{}, error)
	// Lock takes the lock <root>/locks/<topology>__<name> (Heron's "updateTopology" lock is
	// Lock(ctx, t, "updateTopology")), waiting until ctx ends; other processes and other
	// managers contend for the same lock.
	Lock(ctx context.Context, topology, name string) (Unlocker, error)
	// Close releases the manager's locks and ephemeral nodes and stops its watches.
	Close() error
}

// Unlocker releases a lock taken with Lock.
type Unlocker interface {
	Unlock() error
}

// Open returns the state manager cfg names: heron.class.state.manager (Heron's class names,
// either package spelling) or, failing that, heron.statemgr.connection.string (LOCALMODE means
// the local file system), rooted at heron.statemgr.root.path.
func Open(ctx context.Context, cfg *config.Config) (StateManager, error) {
	root := cfg.String(config.KeyStateRoot)
	if root == "" {
		return nil, fmt.Errorf("statemgr: %s is not set (%s)", config.KeyStateRoot, cfg.Source(config.KeyStateRoot))
	}
	class := cfg.String(config.KeyStateManager)
	conn := cfg.String(config.KeyStateConnection)
	switch {
	case strings.Contains(class, "localfs") || strings.Contains(class, "LocalFileSystem") ||
		(class == "" && strings.EqualFold(conn, "LOCALMODE")):
		return NewLocal(root)
	case strings.Contains(class, "zookeeper") || strings.Contains(class, "curator") ||
		strings.Contains(class, "Curator") || class == "":
		opts, err := ZKOptionsFromConfig(cfg)
		if err != nil {
			return nil, err
		}
		return NewZK(ctx, opts)
	}
	return nil, fmt.Errorf("statemgr: unsupported state manager class %q (%s)", class, cfg.Source(config.KeyStateManager))
}

// nodeName is the node's name under its kind's directory.
func nodeName(kind Kind, topology string) (string, error) {
	if !kind.valid() {
		return "", fmt.Errorf("statemgr: unknown kind %q", kind)
	}
	if topology == "" || strings.ContainsAny(topology, "/\x00") || topology == "." || topology == ".." {
		return "", fmt.Errorf("statemgr: invalid topology name %q", topology)
	}
	return topology, nil
}

func lockNode(topology, name string) string { return topology + "__" + name }

// get reads and decodes a node.
func get(ctx context.Context, sm StateManager, kind Kind, topology string, m proto.Message) error {
	b, err := sm.Get(ctx, kind, topology)
	if err != nil {
		return err
	}
	if err := proto.Unmarshal(b, m); err != nil {
		return fmt.Errorf("statemgr: decode %s/%s: %w", kind, topology, err)
	}
	return nil
}

func set(ctx context.Context, sm StateManager, kind Kind, topology string, m proto.Message) error {
	b, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("statemgr: encode %s/%s: %w", kind, topology, err)
	}
	return sm.Set(ctx, kind, topology, b)
}

// Topology reads topologies/<name>.
func Topology(ctx context.Context, sm StateManager, name string) (*model.Topology, error) {
	m := &model.Topology{}
	return m, get(ctx, sm, Topologies, name, m)
}

// SetTopology creates topologies/<name> from t.GetName().
func SetTopology(ctx context.Context, sm StateManager, t *model.Topology) error {
	return set(ctx, sm, Topologies, t.GetName(), t)
}

// PackingPlan reads packingplans/<name>.
func PackingPlan(ctx context.Context, sm StateManager, name string) (*model.PackingPlan, error) {
	m := &model.PackingPlan{}
	return m, get(ctx, sm, PackingPlans, name, m)
}

// SetPackingPlan writes packingplans/<name>.
func SetPackingPlan(ctx context.Context, sm StateManager, name string, p *model.PackingPlan) error {
	return set(ctx, sm, PackingPlans, name, p)
}

// PhysicalPlan reads pplans/<name>.
func PhysicalPlan(ctx context.Context, sm StateManager, name string) (*model.PhysicalPlan, error) {
	m := &model.PhysicalPlan{}
	return m, get(ctx, sm, PhysicalPlans, name, m)
}

// SetPhysicalPlan creates pplans/<name> (use Replace to rewrite it).
func SetPhysicalPlan(ctx context.Context, sm StateManager, name string, p *model.PhysicalPlan) error {
	return set(ctx, sm, PhysicalPlans, name, p)
}

// ExecutionState reads executionstate/<name>.
func ExecutionState(ctx context.Context, sm StateManager, name string) (*model.ExecutionState, error) {
	m := &model.ExecutionState{}
	return m, get(ctx, sm, ExecutionStates, name, m)
}

// SetExecutionState creates executionstate/<topology_name>.
func SetExecutionState(ctx context.Context, sm StateManager, e *model.ExecutionState) error {
	return set(ctx, sm, ExecutionStates, e.GetTopologyName(), e)
}

// TManagerLocation reads tmanagers/<name>.
func TManagerLocation(ctx context.Context, sm StateManager, name string) (*model.TManagerLocation, error) {
	m := &model.TManagerLocation{}
	return m, get(ctx, sm, TManagers, name, m)
}

// SetTManagerLocation writes the ephemeral tmanagers/<topology_name>.
func SetTManagerLocation(ctx context.Context, sm StateManager, l *model.TManagerLocation) error {
	return set(ctx, sm, TManagers, l.GetTopologyName(), l)
}

// MetricsCacheLocation reads metricscaches/<name>.
func MetricsCacheLocation(ctx context.Context, sm StateManager, name string) (*model.MetricsCacheLocation, error) {
	m := &model.MetricsCacheLocation{}
	return m, get(ctx, sm, MetricsCaches, name, m)
}

// SetMetricsCacheLocation writes the ephemeral metricscaches/<topology_name>.
func SetMetricsCacheLocation(ctx context.Context, sm StateManager, l *model.MetricsCacheLocation) error {
	return set(ctx, sm, MetricsCaches, l.GetTopologyName(), l)
}

// SchedulerLocation reads schedulers/<name>.
func SchedulerLocation(ctx context.Context, sm StateManager, name string) (*model.SchedulerLocation, error) {
	m := &model.SchedulerLocation{}
	return m, get(ctx, sm, Schedulers, name, m)
}

// SetSchedulerLocation writes schedulers/<topology_name>.
func SetSchedulerLocation(ctx context.Context, sm StateManager, l *model.SchedulerLocation) error {
	return set(ctx, sm, Schedulers, l.GetTopologyName(), l)
}

// Checkpoints reads statefulcheckpoints/<name>.
func Checkpoints(ctx context.Context, sm StateManager, name string) (*model.StatefulConsistentCheckpoints, error) {
	m := &model.StatefulConsistentCheckpoints{}
	return m, get(ctx, sm, StatefulCheckpoints, name, m)
}

// CleanTopology deletes every node of a topology, topologies last, as Heron's kill does.
func CleanTopology(ctx context.Context, sm StateManager, name string) error {
	var errs []error
	for _, k := range []Kind{TManagers, MetricsCaches, PackingPlans, PhysicalPlans, Schedulers, ExecutionStates, StatefulCheckpoints, Frameworks} {
		if err := sm.Delete(ctx, k, name); err != nil {
			errs = append(errs, err)
		}
	}
	if err := deleteLocks(ctx, sm, name); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		if err := sm.Delete(ctx, Topologies, name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func deleteLocks(ctx context.Context, sm StateManager, topology string) error {
	names, err := sm.List(ctx, Locks)
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		if strings.HasPrefix(n, topology+"__") {
			if err := sm.Delete(ctx, Locks, n); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
