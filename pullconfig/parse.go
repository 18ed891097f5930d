package pullconfig

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/zrep/zrep/client"
	"github.com/zrep/zrep/internal/yamlstrict"
	"github.com/zrep/zrep/zfs"
)

// parser walks one configuration file, as package policy walks a policy.
type parser struct {
	yamlstrict.Parser
}

const topKeys = "state_dir, metrics_textfile, jobs, timeout, sources"
const sourceKeys = "ssh, port, identity, ssh_options, root, datasets, raw, timeout"

// Parse parses a configuration held in data; source names the file in
// error messages, which read "source:line: problem".
func Parse(data []byte, source string) (*Config, error) {
	p := parser{yamlstrict.Parser{Source: source}}
	root, err := p.Document(data)
	if errors.Is(err, yamlstrict.ErrEmpty) {
		return nil, p.Errorf(nil, "no sources defined (empty file)")
	}
	if err != nil {
		return nil, err
	}
	if yamlstrict.IsNull(root) {
		return nil, p.Errorf(nil, "no sources defined (empty document)")
	}
	if root.Kind != yaml.MappingNode {
		return nil, p.Errorf(root, `top level must be a mapping with the key "sources", not %s`, yamlstrict.Describe(root))
	}
	c := &Config{File: source, StateDir: DefaultStateDir, Timeout: DefaultTimeout}
	var sources *yaml.Node
	err = p.EachPair(root, "", "key", func(key string, k, v *yaml.Node) error {
		var err error
		switch key {
		case "state_dir":
			c.StateDir, err = p.path(v, "", key)
		case "metrics_textfile":
			c.MetricsTextfile, err = p.path(v, "", key)
		case "jobs":
			if c.Jobs, err = p.Int(v, "", key); err == nil && (c.Jobs < 1 || c.Jobs > 64) {
				err = p.Errorf(v, "jobs must be between 1 and 64, not %d", c.Jobs)
			}
		case "timeout":
			c.Timeout, err = p.duration(v, "", key)
		case "sources":
			sources = v
		default:
			err = p.Errorf(k, "unknown key %q (the top-level keys are %s)", key, topKeys)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if sources == nil {
		return nil, p.Errorf(root, `no sources defined (missing key "sources")`)
	}
	if yamlstrict.IsNull(sources) || sources.Kind == yaml.MappingNode && len(sources.Content) == 0 {
		return nil, p.Errorf(sources, "no sources defined")
	}
	if sources.Kind != yaml.MappingNode {
		return nil, p.Errorf(sources, `"sources" must be a mapping of source names, not %s`, yamlstrict.Describe(sources))
	}
	var timeoutSet []bool
	err = p.EachPair(sources, "", "source name", func(name string, k, v *yaml.Node) error {
		if !sourceName.MatchString(name) {
			return p.Errorf(k, "source name %q: use letters, digits, '.', '_' and '-' (at most 64, starting with a letter or digit): it names the state file and the metrics", name)
		}
		s, hasTimeout, err := p.source(name, k, v)
		if err != nil {
			return err
		}
		c.Sources = append(c.Sources, s)
		timeoutSet = append(timeoutSet, hasTimeout)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range c.Sources {
		if !timeoutSet[i] {
			c.Sources[i].Timeout = c.Timeout
		}
	}
	if err := p.checkRoots(c.Sources); err != nil {
		return nil, err
	}
	sortSources(c.Sources)
	return c, nil
}

// source parses one source's mapping.
func (p *parser) source(name string, key, val *yaml.Node) (Source, bool, error) {
	ctx := fmt.Sprintf("source %q: ", name)
	s := Source{Name: name, Line: key.Line}
	if yamlstrict.IsNull(val) || val.Kind == yaml.MappingNode && len(val.Content) == 0 {
		return s, false, p.Errorf(key, `%sempty: it needs at least "ssh" and "root"`, ctx)
	}
	if val.Kind != yaml.MappingNode {
		return s, false, p.Errorf(val, "%smust be a mapping of %s, not %s", ctx, sourceKeys, yamlstrict.Describe(val))
	}
	var hasTimeout bool
	var sshNode *yaml.Node
	err := p.EachPair(val, ctx, "key", func(k string, kn, vn *yaml.Node) error {
		var err error
		switch k {
		case "ssh":
			sshNode = vn
			s.SSH, err = p.String(vn, ctx, k)
		case "port":
			if s.Port, err = p.Int(vn, ctx, k); err == nil && (s.Port < 1 || s.Port > 65535) {
				err = p.Errorf(vn, "%sport %d is out of range 1-65535", ctx, s.Port)
			}
		case "identity":
			s.Identity, err = p.path(vn, ctx, k)
		case "ssh_options":
			s.SSHOptions, err = p.Strings(vn, ctx, k)
		case "root":
			if s.Root, err = p.String(vn, ctx, k); err == nil {
				err = p.dataset(vn, ctx, k, s.Root)
			}
		case "datasets":
			if s.Datasets, err = p.Strings(vn, ctx, k); err == nil {
				for i, ds := range s.Datasets {
					if err := p.dataset(yamlstrict.Resolve(vn.Content[i]), ctx, k, ds); err != nil {
						return err
					}
				}
			}
		case "raw":
			s.Raw, err = p.Bool(vn, ctx, k)
		case "timeout":
			s.Timeout, err = p.duration(vn, ctx, k)
			hasTimeout = true
		default:
			err = p.Errorf(kn, "%sunknown key %q (the keys of a source are %s)", ctx, k, sourceKeys)
		}
		return err
	})
	if err != nil {
		return s, false, err
	}
	switch {
	case s.SSH == "":
		return s, false, p.Errorf(key, `%smissing "ssh: USER@HOST"`, ctx)
	case s.Root == "":
		return s, false, p.Errorf(key, `%smissing "root: LOCAL_DATASET" (where its datasets are received)`, ctx)
	}
	// The same checks as pull --ssh ... applies to its flags.
	d := client.SSH{Destination: s.SSH, Port: s.Port, Identity: s.Identity, Options: s.SSHOptions}
	if _, err := d.Args(); err != nil {
		return s, false, p.Errorf(sshNode, "%s%v", ctx, err)
	}
	return s, hasTimeout, nil
}

// checkRoots refuses two sources receiving into the same tree: their
// datasets, state and lag could not be told apart.
func (p *parser) checkRoots(ss []Source) error {
	for i, a := range ss {
		for _, b := range ss[:i] {
			if a.Root == b.Root || strings.HasPrefix(a.Root, b.Root+"/") || strings.HasPrefix(b.Root, a.Root+"/") {
				return p.Errorf(&yaml.Node{Line: a.Line}, "source %q: root %s overlaps root %s of source %q (line %d): give each source its own tree",
					a.Name, a.Root, b.Root, b.Name, b.Line)
			}
		}
	}
	return nil
}

func (p *parser) dataset(n *yaml.Node, ctx, key, name string) error {
	if err := zfs.ValidateDatasetName(name); err != nil {
		return p.Errorf(n, "%s%s: %v", ctx, key, err)
	}
	return nil
}

// path reads an absolute path.
func (p *parser) path(n *yaml.Node, ctx, key string) (string, error) {
	s, err := p.String(n, ctx, key)
	if err != nil {
		return "", err
	}
	if !filepath.IsAbs(s) || strings.ContainsAny(s, "\x00\n") {
		return "", p.Errorf(n, "%s%s must be an absolute path, not %q", ctx, key, s)
	}
	return filepath.Clean(s), nil
}

func (p *parser) duration(n *yaml.Node, ctx, key string) (time.Duration, error) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		return 0, p.Errorf(n, "%s%s must be a duration such as 90m, 6h or 2d, not %s", ctx, key, yamlstrict.Describe(n))
	}
	d, err := ParseDuration(n.Value)
	if err != nil {
		return 0, p.Errorf(n, "%s%s: %v", ctx, key, err)
	}
	return d, nil
}
