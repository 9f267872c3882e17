package localsched

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"egret/heron/model"
)

// tmanagerControl sends an action to the topology manager's controller, found
// through its TManagerLocation: GET /activate, /deactivate or
// /runtime_config/update with the topology id, as Heron's CLI does. Only a 200
// counts as success.
func tmanagerControl(ctx context.Context, st stateTree, topology, action string, runtimeConfig []string) error {
	loc, err := st.TManagerLocation(ctx, topology)
	if err != nil {
		return fmt.Errorf("read the topology manager's location: %w", err)
	}
	if loc == nil {
		return fmt.Errorf("topology %s has no topology manager location yet (is container 0 up?)", topology)
	}
	q := url.Values{"topologyid": {loc.GetTopologyId()}}
	for _, rc := range runtimeConfig {
		q.Add("runtime-config", rc)
	}
	u := url.URL{Scheme: "http", Host: net.JoinHostPort(loc.GetHost(), strconv.Itoa(int(loc.GetControllerPort()))), Path: "/" + action, RawQuery: q.Encode()}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("topology manager at %s: %w", u.Host, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("topology manager at %s answered %s to %s: %s", u.Host, resp.Status, action, strings.TrimSpace(string(body)))
	}
	return nil
}

// transition activates or deactivates as Heron's CLI does: read the state from
// the physical plan; already there is success; otherwise it must be in the
// other state.
func transition(ctx context.Context, st stateTree, topology string, activate bool) (changed bool, err error) {
	pp, err := st.PhysicalPlan(ctx, topology)
	if err != nil {
		return false, fmt.Errorf("read the physical plan of %s: %w", topology, err)
	}
	if pp == nil || pp.GetTopology() == nil {
		return false, fmt.Errorf("topology %s has no physical plan yet: its containers are still starting (see egret status)", topology)
	}
	want, from, action := model.TopologyState_RUNNING, model.TopologyState_PAUSED, "activate"
	if !activate {
		want, from, action = model.TopologyState_PAUSED, model.TopologyState_RUNNING, "deactivate"
	}
	switch pp.GetTopology().GetState() {
	case want:
		return false, nil
	case from:
	default:
		return false, fmt.Errorf("topology %s is %v; cannot %s it", topology, pp.GetTopology().GetState(), action)
	}
	return true, tmanagerControl(ctx, st, topology, action, nil)
}
