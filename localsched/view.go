package localsched

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"egret/heron/model"
)

// Status prints the topology's containers and processes, from the daemon
// (restarted first if it is gone).
func (c *Client) Status(ctx context.Context, topology string, asJSON bool) error {
	s, st, err := c.existing(ctx, topology)
	if err != nil {
		return err
	}
	defer st.Close()
	var ts *TopologyStatus
	err = c.withDaemon(ctx, s, st, topology, func(ep string) (err error) {
		ts, err = fetchStatus(ctx, ep)
		return err
	})
	if err != nil {
		return fmt.Errorf("status of %s: %w", topology, err)
	}
	if asJSON {
		enc := json.NewEncoder(c.opts.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(ts)
	}
	printStatus(c.opts.Out, ts)
	return nil
}

func fetchStatus(ctx context.Context, endpoint string) (*TopologyStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+endpoint+"/status", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scheduler at %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("scheduler at %s answered %s: %s", endpoint, resp.Status, strings.TrimSpace(string(b)))
	}
	var ts TopologyStatus
	if err := json.NewDecoder(resp.Body).Decode(&ts); err != nil {
		return nil, fmt.Errorf("scheduler at %s: bad status: %w", endpoint, err)
	}
	return &ts, nil
}

// processRow is what the table shows of one process from an executor's
// status file; unknown fields are ignored so the file may grow.
type processRow struct {
	Name     string  `json:"name"`
	State    string  `json:"state"`
	Pid      int     `json:"pid"`
	Restarts int     `json:"restarts"`
	Health   string  `json:"health"`
	CPU      float64 `json:"cpu_seconds"`
	RSS      uint64  `json:"rss_bytes"`
}

// processesOf decodes the process list of an executor status file.
func processesOf(raw json.RawMessage) []processRow {
	if len(raw) == 0 {
		return nil
	}
	var doc struct {
		Processes []processRow `json:"processes"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil
	}
	sort.Slice(doc.Processes, func(i, j int) bool { return doc.Processes[i].Name < doc.Processes[j].Name })
	return doc.Processes
}

func printStatus(w io.Writer, ts *TopologyStatus) {
	fmt.Fprintf(w, "Topology %s on %s/%s/%s: %s\n", ts.Topology, ts.Cluster, ts.Role, ts.Environment, ts.State)
	fmt.Fprintf(w, "Scheduler: pid %d at http://%s\n\n", ts.Scheduler.Pid, ts.Scheduler.Endpoint)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER\tPROCESS\tSTATE\tPID\tRESTARTS\tHEALTH\tCPU\tMEMORY")
	for _, c := range ts.Containers {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t\t\t\n", c.Container, "heron-executor", c.State, c.Pid, c.Restarts)
		for _, p := range processesOf(c.Processes) {
			health := p.Health
			if health == "" {
				health = "-"
			}
			fmt.Fprintf(tw, "%d\t  %s\t%s\t%d\t%d\t%s\t%.1fs\t%s\n", c.Container, p.Name, p.State, p.Pid, p.Restarts, health, p.CPU, humanBytes(p.RSS))
		}
	}
	tw.Flush()
}

func humanBytes(b uint64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1fGiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1fMiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.0fKiB", float64(b)/(1<<10))
	case b == 0:
		return "-"
	}
	return fmt.Sprintf("%dB", b)
}

// printPlan prints a packing plan (and, when command is given, each
// container's command) as a table or as JSON: the dry runs of submit and update.
func printPlan(w io.Writer, format, topology string, plan *model.PackingPlan, command func(container int) []string) error {
	type instance struct {
		Component string `json:"component"`
		TaskID    int32  `json:"task_id"`
		Index     int32  `json:"component_index"`
	}
	type container struct {
		ID        int32      `json:"id"`
		CPU       float64    `json:"cpu"`
		RAM       int64      `json:"ram_bytes"`
		Disk      int64      `json:"disk_bytes"`
		Instances []instance `json:"instances"`
		Command   []string   `json:"command,omitempty"`
	}
	doc := struct {
		Topology   string      `json:"topology"`
		PlanID     string      `json:"packing_plan_id"`
		Containers []container `json:"containers"`
	}{Topology: topology, PlanID: plan.GetId()}
	if command != nil {
		doc.Containers = append(doc.Containers, container{ID: 0, Command: command(0)})
	}
	for _, cp := range plan.GetContainerPlans() {
		r := cp.GetRequiredResource()
		ct := container{ID: cp.GetId(), CPU: r.GetCpu(), RAM: r.GetRam(), Disk: r.GetDisk()}
		for _, ip := range cp.GetInstancePlans() {
			ct.Instances = append(ct.Instances, instance{ip.GetComponentName(), ip.GetTaskId(), ip.GetComponentIndex()})
		}
		if command != nil {
			ct.Command = command(int(cp.GetId()))
		}
		doc.Containers = append(doc.Containers, ct)
	}
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(doc)
	}
	fmt.Fprintf(w, "Packing plan of %s (%d containers besides container 0)\n", topology, len(plan.GetContainerPlans()))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER\tCPU\tRAM\tDISK\tINSTANCES")
	for _, ct := range doc.Containers {
		var inst []string
		for _, i := range ct.Instances {
			inst = append(inst, fmt.Sprintf("%s[%d] task %d", i.Component, i.Index, i.TaskID))
		}
		if ct.ID == 0 {
			fmt.Fprintf(tw, "0\t-\t-\t-\t(topology manager)\n")
			continue
		}
		fmt.Fprintf(tw, "%d\t%.2f\t%s\t%s\t%s\n", ct.ID, ct.CPU, humanBytes(uint64(ct.RAM)), humanBytes(uint64(ct.Disk)), strings.Join(inst, ", "))
	}
	tw.Flush()
	if command != nil {
		fmt.Fprintln(w, "\nContainer commands (ports are chosen at launch):")
		for _, ct := range doc.Containers {
			fmt.Fprintf(w, "  container %d: %s\n", ct.ID, strings.Join(ct.Command, " "))
		}
	}
	return nil
}

// Logs prints the scheduler's log (no container), a container's executor
// log, or one process's log, and with follow keeps printing what is appended.
func (c *Client) Logs(ctx context.Context, topology string, container int, process string, follow bool) error {
	s, err := loadSettings(c.opts, topology)
	if err != nil {
		return err
	}
	wd := workdir(s.WorkingDirectory)
	if _, err := os.Stat(string(wd)); err != nil {
		return fmt.Errorf("topology %s has no working directory %s", topology, wd)
	}
	path, err := logPath(wd, container, process)
	if err != nil {
		return err
	}
	return printFile(ctx, c.opts.Out, path, follow)
}
