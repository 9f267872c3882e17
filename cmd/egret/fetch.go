package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"egret/fetcher"
)

// fetchCommands returns `egret fetch` and `egret cache`.
func fetchCommands() []*cli.Command {
	return []*cli.Command{
		{
			Name:      "fetch",
			Usage:     "fetch one artifact (and by default extract it) into DIR through the cache",
			ArgsUsage: "URI DIR",
			Description: "URI is http(s)://, file://, s3::, gcs:: or an absolute path; a checksum may be given\n" +
				"as ?checksum=sha256:HEX or with --checksum. Exits 0 only when DIR holds the complete artifact.",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "checksum", Usage: "expected digest, TYPE:HEX (sha256, sha512, sha1, md5)"},
				&cli.BoolFlag{Name: "no-extract", Usage: "place the file as it is"},
				&cli.BoolFlag{Name: "executable", Usage: "make the placed file executable"},
				&cli.StringFlag{Name: "output-file", Usage: "name of the placed file in DIR"},
				&cli.BoolFlag{Name: "no-cache", Usage: "bypass the host's cache"},
				&cli.DurationFlag{Name: "deadline", Value: 10 * time.Minute, Usage: "give up after this long, retries included"},
				&cli.BoolFlag{Name: "allow-vcs", Usage: "allow git and hg sources"},
				cacheDirFlag(),
			},
			Action: func(c *cli.Context) error {
				if c.NArg() != 2 {
					return fmt.Errorf("fetch: want URI DIR, got %d arguments", c.NArg())
				}
				f, err := newFetcher(c)
				if err != nil {
					return err
				}
				f.Deadline = c.Duration("deadline")
				f.AllowVCS = c.Bool("allow-vcs")
				f.Progress = progressPrinter(os.Stderr)
				res, err := f.Fetch(c.Context, fetcher.Request{
					URI: c.Args().Get(0), Dest: c.Args().Get(1), Checksum: c.String("checksum"),
					Extract: !c.Bool("no-extract"), Executable: c.Bool("executable"),
					OutputFile: c.String("output-file"), Cache: !c.Bool("no-cache"),
				})
				finishProgress(os.Stderr)
				if err != nil {
					return err
				}
				how := "downloaded"
				if res.CacheHit {
					how = "from the cache"
				}
				digest := res.Digest
				if digest == "" {
					digest = "not verified"
				}
				fmt.Fprintf(os.Stdout, "%s: %s (%d bytes, %s)\n", res.Path, digest, res.Bytes, how)
				return nil
			},
		},
		{
			Name:  "cache",
			Usage: "show and trim the host's fetch cache",
			Subcommands: []*cli.Command{
				{
					Name:  "list",
					Usage: "list cached artifacts, most recently used first",
					Flags: []cli.Flag{cacheDirFlag()},
					Action: func(c *cli.Context) error {
						f, err := newFetcher(c)
						if err != nil {
							return err
						}
						entries, err := f.List()
						if err != nil {
							return err
						}
						w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
						fmt.Fprintln(w, "KEY\tSIZE\tLAST USED\tURI")
						var total int64
						for _, e := range entries {
							total += e.Size()
							fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", short(e.Key), bytesHuman(e.Size()), e.LastUsed.Format(time.DateTime), e.URI)
						}
						fmt.Fprintf(w, "\t%s\t\t%d entries in %s\n", bytesHuman(total), len(entries), f.CacheDir)
						return w.Flush()
					},
				},
				{
					Name:  "prune",
					Usage: "evict least recently used artifacts until the cache fits --max-size",
					Flags: []cli.Flag{
						cacheDirFlag(),
						&cli.StringFlag{Name: "max-size", Value: "0", Usage: "bound in bytes (suffixes KiB, MiB, GiB); 0 empties the cache of unused entries"},
					},
					Action: func(c *cli.Context) error {
						max, err := parseSize(c.String("max-size"))
						if err != nil {
							return fmt.Errorf("--max-size: %w", err)
						}
						f, err := newFetcher(c)
						if err != nil {
							return err
						}
						evicted, err := f.Prune(max)
						for _, e := range evicted {
							fmt.Fprintf(os.Stdout, "evicted %s %s %s\n", short(e.Key), bytesHuman(e.Size()), e.URI)
						}
						return err
					},
				},
			},
		},
	}
}

func cacheDirFlag() cli.Flag {
	return &cli.StringFlag{Name: "cache-dir", Usage: "the cache (default $EGRET_CACHE_DIR, else ${XDG_CACHE_HOME:-~/.cache}/egret)"}
}

func newFetcher(c *cli.Context) (*fetcher.Fetcher, error) {
	dir := c.String("cache-dir")
	if dir == "" {
		var err error
		if dir, err = fetcher.DefaultCacheDir(); err != nil {
			return nil, err
		}
	}
	return &fetcher.Fetcher{CacheDir: dir}, nil
}

func short(key string) string {
	if len(key) > 19 {
		return key[:19]
	}
	return key
}

func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size (like 512MiB or 10GiB)", s)
	}
	return n * mult, nil
}

func bytesHuman(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fGiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fKiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// progressPrinter draws a bar on a terminal, redrawn at most ten times a second,
// and otherwise prints one line per step.
func progressPrinter(w io.Writer) func(fetcher.Progress) {
	tty := isTerminal(w)
	var last time.Time
	var step string
	return func(p fetcher.Progress) {
		if !tty {
			if p.Step != step {
				step = p.Step
				fmt.Fprintf(w, "%s %s\n", p.Step, p.URI)
			}
			return
		}
		now := time.Now()
		if p.Step == step && now.Sub(last) < 100*time.Millisecond && (p.Total <= 0 || p.Done < p.Total) {
			return
		}
		step, last = p.Step, now
		if p.Total > 0 {
			const width = 30
			filled := int(int64(width) * p.Done / p.Total)
			fmt.Fprintf(w, "\r%-8s [%s%s] %s / %s ", p.Step, strings.Repeat("=", filled), strings.Repeat(" ", width-filled), bytesHuman(p.Done), bytesHuman(p.Total))
		} else {
			fmt.Fprintf(w, "\r%-8s %s %s          ", p.Step, bytesHuman(p.Done), p.URI)
		}
	}
}

func finishProgress(w io.Writer) {
	if isTerminal(w) {
		fmt.Fprintln(w)
	}
}
