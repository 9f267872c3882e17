package localsched

import (
	"context"
	"errors"
	"io"
	"os"
)

// ClientOptions are the `egret` command line's choices for one command.
type ClientOptions struct {
	Cluster, Role, Environment string
	ConfigPath                 string
	ConfigProperties           []string // KEY=VALUE
	ConfigFiles                []string
	ConfigLoader               string
	Verbose                    bool
	DryRun                     bool
	DryRunFormat               string // table or json
	Out, Err                   io.Writer
	// Egret is the binary that runs the daemon (`egret scheduler`); default: this one.
	Egret string
}

// Client carries out the topology commands on a local cluster.
type Client struct {
	opts ClientOptions
}

// NewClient checks the options; nothing is contacted until a command runs.
func NewClient(ctx context.Context, opts ClientOptions) (*Client, error) {
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	if opts.Err == nil {
		opts.Err = os.Stderr
	}
	if opts.Egret == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		opts.Egret = exe
	}
	return &Client{opts: opts}, nil
}

var errNotYet = errors.New("not available yet")

func (c *Client) Submit(ctx context.Context, pkg string, deployDeactivated bool) error {
	return errNotYet
}
func (c *Client) Activate(ctx context.Context, topology string) error               { return errNotYet }
func (c *Client) Deactivate(ctx context.Context, topology string) error             { return errNotYet }
func (c *Client) Restart(ctx context.Context, topology string, container int) error { return errNotYet }
func (c *Client) Kill(ctx context.Context, topology string) error                   { return errNotYet }
func (c *Client) Update(ctx context.Context, topology string, parallelism map[string]int, containers int, runtimeConfig []string) error {
	return errNotYet
}
func (c *Client) Status(ctx context.Context, topology string, asJSON bool) error { return errNotYet }
func (c *Client) List(ctx context.Context) ([]string, error)                     { return nil, errNotYet }
func (c *Client) Logs(ctx context.Context, topology string, container int, process string, follow bool) error {
	return errNotYet
}

// Options configure the daemon, `egret scheduler`.
type Options struct {
	Cluster, Role, Environment string
	Topology                   string
	ConfigPath                 string
	ConfigProperties           []string
	ConfigFiles                []string
	ConfigLoader               string
	// WorkingDirectory overrides heron.scheduler.local.working.directory.
	WorkingDirectory string
	// Ready, when set, receives one line once every container has started
	// ("ok") or could not ("error: <reason>"), and is then closed.
	Ready io.WriteCloser
	// Egret is the binary that runs the executors (`egret heron-executor`).
	Egret string
	Log   io.Writer
}

// Run is the daemon: it returns when the topology is killed or ctx ends (its
// executors keep running then, to be adopted by the next daemon).
func Run(ctx context.Context, opts Options) error { return errNotYet }
