package proc

// LoadFile reads an `egret supervise` YAML file (docs/supervisor.md has the
// schema) and returns its processes and its log directory (relative paths
// resolved against the file's directory). A malformed file is refused with
// the file, line and key at fault; unknown keys are errors.
func LoadFile(path string) (specs []Spec, logDir string, err error) {
	return nil, "", nil
}
