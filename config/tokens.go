package config

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
)

//go:embed defaults
var defaultsFS embed.FS

// EmbeddedClusters are the clusters whose configuration is built into egret.
var EmbeddedClusters = []string{"local", "localzk", "mesos"}

func embeddedFiles(cluster string) ([]confFile, error) {
	ents, err := fs.ReadDir(defaultsFS, path.Join("defaults", cluster))
	if err != nil || cluster == "" {
		return nil, fmt.Errorf("no built-in configuration for cluster %q (built in: %s)", cluster, strings.Join(EmbeddedClusters, ", "))
	}
	var files []confFile
	for _, e := range ents {
		data, err := defaultsFS.ReadFile(path.Join("defaults", cluster, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("built-in configuration %s: %w", cluster, err)
		}
		files = append(files, confFile{name: e.Name(), data: data})
	}
	return files, nil
}

// tokenKeys maps each substitution token to the key holding its value (Heron's Key enum).
var tokenKeys = map[string]string{
	"HERON_HOME":    KeyHeronHome,
	"HERON_BIN":     "heron.directory.bin",
	"HERON_CONF":    KeyHeronConf,
	"HERON_LIB":     "heron.directory.lib",
	"HERON_DIST":    "heron.directory.dist",
	"HERON_ETC":     "heron.directory.etc",
	"CLUSTER":       KeyCluster,
	"ROLE":          KeyRole,
	"ENVIRON":       KeyEnviron,
	"TOPOLOGY":      KeyTopologyName,
	"TOPOLOGY_NAME": KeyTopologyName,
	"TOPOLOGY_ID":   KeyTopologyID,
}

func knownTokens() []string {
	out := []string{"HOME", "JAVA_HOME", "~"}
	var rest []string
	for t := range tokenKeys {
		rest = append(rest, t)
	}
	sort.Strings(rest)
	return append(out, rest...)
}

// heronDefaults are Heron's built-in values for keys the files usually leave out.
var heronDefaults = map[string]string{
	"heron.directory.bin":                        "${HERON_HOME}/bin",
	KeyHeronConf:                                 "${HERON_HOME}/conf",
	"heron.directory.lib":                        "${HERON_HOME}/lib",
	"heron.directory.dist":                       "${HERON_HOME}/dist",
	"heron.directory.etc":                        "${HERON_HOME}/etc",
	"heron.directory.java.home":                  "${JAVA_HOME}",
	"heron.directory.cluster.home":               "./heron-core",
	"heron.directory.cluster.conf":               "./heron-conf",
	"heron.directory.sandbox.java.home":          "/usr/lib/jvm/default-java",
	"heron.package.core.uri":                     "${HERON_DIST}/heron-core.tar.gz",
	"heron.package.core.directory":               "${HERON_DIST}/heron-core",
	"heron.package.use_core_uri":                 "true",
	KeySchedulerService:                          "true",
	"heron.binaries.executor":                    "${HERON_BIN}/heron-executor",
	"heron.binaries.stmgr":                       "${HERON_BIN}/heron-stmgr",
	"heron.binaries.tmanager":                    "${HERON_BIN}/heron-tmanager",
	"heron.binaries.shell":                       "${HERON_BIN}/heron-shell",
	"heron.binaries.python.instance":             "${HERON_BIN}/heron-python-instance",
	"heron.binaries.cpp.instance":                "${HERON_BIN}/heron-cpp-instance",
	"heron.binaries.downloader":                  "${HERON_BIN}/heron-downloader",
	"heron.classpath.instance":                   "${HERON_LIB}/instance/*",
	"heron.classpath.metrics.manager":            "${HERON_LIB}/metricsmgr/*",
	"heron.classpath.metricscache.manager":       "${HERON_LIB}/metricscachemgr/*",
	"heron.classpath.scheduler":                  "${HERON_LIB}/scheduler/*",
	"heron.classpath.packing":                    "${HERON_LIB}/packing/*",
	"heron.classpath.statemgr":                   "${HERON_LIB}/statemgr/*",
	"heron.classpath.uploader":                   "${HERON_LIB}/uploader/*",
	"heron.classpath.ckptmgr":                    "${HERON_LIB}/ckptmgr/*",
	"heron.classpath.statefulstorage":            "${HERON_LIB}/statefulstorage/*",
	"heron.classpath.healthmgr":                  "${HERON_LIB}/healthmgr/*",
	"heron.config.file.cluster.yaml":             "${HERON_CONF}/cluster.yaml",
	"heron.config.file.client.yaml":              "${HERON_CONF}/client.yaml",
	"heron.config.file.healthmgr.yaml":           "${HERON_CONF}/healthmgr.yaml",
	"heron.config.file.metrics.yaml":             "${HERON_CONF}/metrics_sinks.yaml",
	"heron.config.file.packing.yaml":             "${HERON_CONF}/packing.yaml",
	"heron.config.file.scheduler.yaml":           "${HERON_CONF}/scheduler.yaml",
	"heron.config.file.statemgr.yaml":            "${HERON_CONF}/statemgr.yaml",
	"heron.config.file.system.yaml":              "${HERON_CONF}/heron_internals.yaml",
	"heron.config.file.uploader.yaml":            "${HERON_CONF}/uploader.yaml",
	"heron.config.file.downloader.yaml":          "${HERON_CONF}/downloader.yaml",
	"heron.config.file.stateful.yaml":            "${HERON_CONF}/stateful.yaml",
	"heron.config.file.override.yaml":            "${HERON_CONF}/override.yaml",
	"heron.resources.stmgr.ram":                  "1073741824",
	"heron.resources.ckptmgr.ram":                "1073741824",
	"heron.resources.metricsmgr.ram":             "1073741824",
	"heron.resources.instance.ram":               "1073741824",
	"heron.resources.instance.cpu":               "1.0",
	"heron.resources.instance.disk":              "1073741824",
	"heron.topology.metricscachemgr.mode":        "disabled",
	"heron.command.update.prompt":                "disabled",
	KeyZKSessionTimeout:                          "30000",
	KeyZKConnTimeout:                             "30000",
	"heron.statemgr.zookeeper.retry.count":       "10",
	"heron.statemgr.zookeeper.retry.interval.ms": "10000",
	KeyZKInitTree:                                "true",
	KeyLocalInitTree:                             "true",
}

// Defaults returns the keys that have a Heron default, sorted.
func Defaults() []string {
	keys := make([]string, 0, len(heronDefaults))
	for k := range heronDefaults {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

var (
	tokenRE    = regexp.MustCompile(`\$\{([A-Za-z0-9_]*)\}`)
	wholeTokRE = regexp.MustCompile(`^\$\{([A-Z_]+)\}$`)
	urlRE      = regexp.MustCompile(`^([^/]+)://(.+)$`)
)

func tokensIn(s string) []string {
	var out []string
	for _, m := range tokenRE.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

// substitute replaces tokens as Heron's TokenSub does: the value is split on '/', and a
// component that is exactly ~, ${HOME}, ${JAVA_HOME} or ${TOKEN} is replaced; for a URL only
// the part after scheme:// is substituted. A token whose value is not known yet (${TOPOLOGY}
// before a topology is named, ${JAVA_HOME} unset) is left as it is.
func (c *Config) substitute(s string, depth int) string {
	if depth > 8 || !strings.ContainsAny(s, "$~") {
		return s
	}
	t := strings.TrimSpace(s)
	if m := urlRE.FindStringSubmatch(t); m != nil {
		return m[1] + "://" + c.substitute(m[2], depth)
	}
	parts := strings.Split(t, "/")
	changed := false
	for i, p := range parts {
		before := parts[i]
		switch {
		case p == "~" || p == "${HOME}":
			parts[i] = strings.TrimSuffix(c.userHome(), "/")
		case p == "${JAVA_HOME}":
			if v := c.getenv("JAVA_HOME"); v != "" {
				parts[i] = strings.TrimSuffix(v, "/")
			}
		default:
			m := wholeTokRE.FindStringSubmatch(p)
			if m == nil {
				continue
			}
			key, ok := tokenKeys[m[1]]
			if !ok {
				continue
			}
			raw, ok := c.raw(key)
			if !ok || raw == "" {
				continue
			}
			parts[i] = strings.TrimSuffix(c.substitute(raw, depth+1), "/")
		}
		changed = changed || parts[i] != before
	}
	out := strings.Join(parts, "/")
	if changed {
		// Heron joins the components as java.io.File does, which folds repeated separators.
		for strings.Contains(out, "//") {
			out = strings.ReplaceAll(out, "//", "/")
		}
	}
	return out
}

// loaders maps every --config-loader spelling to the built-in cluster it stands for.
var loaders = map[string]string{
	"local":   "local",
	"localzk": "localzk",
	"mesos":   "mesos",
	"org.apache.heron.scheduler.local.LocalConfigLoader":  "local",
	"com.twitter.heron.scheduler.local.LocalConfigLoader": "local",
	"org.apache.heron.scheduler.mesos.MesosConfigLoader":  "mesos",
	"com.twitter.heron.scheduler.mesos.MesosConfigLoader": "mesos",
}

// Loaders returns every accepted --config-loader name, sorted.
func Loaders() []string {
	out := make([]string, 0, len(loaders))
	for k := range loaders {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func loaderShortName(name string) (string, error) {
	if c, ok := loaders[strings.TrimSpace(name)]; ok {
		return c, nil
	}
	return "", fmt.Errorf("unknown config loader %q (known: %s)", name, strings.Join(Loaders(), ", "))
}

// oldKeys renames the keys of Heron's 2016 flat configuration files to today's.
var oldKeys = map[string]string{
	"heron.core.release.uri":   "heron.package.core.uri",
	"heron.topology.pkg.uri":   "heron.package.topology.uri",
	"launcher.class":           "heron.class.launcher",
	"scheduler.class":          "heron.class.scheduler",
	"uploader.class":           "heron.class.uploader",
	"packing.algorithm.class":  "heron.class.packing.algorithm",
	"state.manager.class":      KeyStateManager,
	"state.root.address":       KeyStateRoot,
	"zk.connection.string":     KeyStateConnection,
	"zk.connection.timeout.ms": KeyZKConnTimeout,
	"zk.session.timeout.ms":    KeyZKSessionTimeout,
	"instance.cpu.default":     "heron.resources.instance.cpu",
	"instance.ram.default":     "heron.resources.instance.ram",
	"instance.disk.default":    "heron.resources.instance.disk",
	"stmgr.ram.default":        "heron.resources.stmgr.ram",
	"heron.java.home.path":     "heron.directory.java.home",
	"heron.verbose":            "heron.config.verbose",
	"heron.release.package":    "heron.release.package",
}

// OldKey returns today's name for an old flat-file key, and whether it was renamed.
func OldKey(k string) (string, bool) {
	n, ok := oldKeys[k]
	return n, ok && n != k
}
