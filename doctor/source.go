package doctor

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	gossh "golang.org/x/crypto/ssh"

	"github.com/zrep/zrep/authkeys"
	"github.com/zrep/zrep/policy"
	"github.com/zrep/zrep/server"
)

// Exister says whether a dataset exists; *zfs.ZFS implements it.
type Exister interface {
	Exists(ctx context.Context, name string) (bool, error)
}

const servePath = "/usr/local/bin/zrep-stdinserver"

// exampleLine is the authorized_keys line the fixes show.
func exampleLine(policyFile, identity string) string {
	if policyFile == "" {
		policyFile = "/etc/zrep/policy.yaml"
	}
	if identity == "" {
		identity = "NAME"
	}
	return fmt.Sprintf(`restrict,from="BACKUP_HOST_ADDRESS",command="%s serve --policy %s --identity %s" ssh-ed25519 AAAA... zrep`, servePath, policyFile, identity)
}

// PolicyCheck checks that the policy file parses and that every dataset it
// allows as a root exists on this host.
func PolicyCheck(file string, zfs Exister) Check {
	return func(ctx context.Context) []Finding {
		p, err := policy.Load(file)
		if err != nil {
			return []Finding{finding("policy", file, Error, "does not parse: "+err.Error(),
				"correct it (the message names the line); the README's policy section shows the syntax")}
		}
		var out []Finding
		for _, id := range p.Identities() {
			ident, _ := p.Identity(id)
			if ident.Sink != nil {
				out = append(out, sinkFinding(ctx, file, id, ident.Sink.Root, zfs))
			}
			if ident.Source == nil {
				continue
			}
			flt := ident.Source
			roots := flt.Roots()
			if len(roots) == 1 && roots[0] == "" {
				out = append(out, finding("policy", file, OK, fmt.Sprintf("identity %s may see every dataset of every pool (the bare \"<\")", id), ""))
				continue
			}
			if len(roots) == 0 {
				out = append(out, finding("policy", file, Warning, fmt.Sprintf("identity %s may see nothing: no rule allows a dataset", id),
					"allow what it should back up, e.g. \"tank/data<\": true"))
				continue
			}
			var missing []Finding
			for _, root := range roots {
				d := flt.Decide(root)
				subject := fmt.Sprintf("%s (identity %s)", root, id)
				if d.Rule != nil {
					subject = fmt.Sprintf("%s (identity %s, %s:%d)", root, id, file, d.Rule.Line)
				}
				ok, err := zfs.Exists(ctx, root)
				switch {
				case err != nil:
					missing = append(missing, finding("policy root", subject, Error, "cannot tell whether it exists: "+err.Error(), "check that zfs works on this host (zfs list)"))
				case !ok:
					missing = append(missing, finding("policy root", subject, Error, "the policy allows it, but no such dataset exists on this host: the key sees nothing there",
						"correct the policy's key (a typo?), or create the dataset"))
				}
			}
			if len(missing) == 0 {
				out = append(out, finding("policy", file, OK, fmt.Sprintf("identity %s: %s exist", id, strings.Join(roots, ", ")), ""))
			}
			out = append(out, missing...)
		}
		return out
	}
}

// sinkFinding checks the pool of an identity's sink root: the root itself
// is created by the first push.
func sinkFinding(ctx context.Context, file, id, root string, zfs Exister) Finding {
	pool, _, _ := strings.Cut(root, "/")
	subject := fmt.Sprintf("%s (sink of identity %s)", root, id)
	ok, err := zfs.Exists(ctx, pool)
	switch {
	case err != nil:
		return finding("policy root", subject, Error, "cannot tell whether its pool exists: "+err.Error(), "check that zfs works on this host (zpool list)")
	case !ok:
		return finding("policy root", subject, Error, fmt.Sprintf("the pool %s does not exist on this host: every push to it fails", pool),
			"correct the sink's root in "+file+", or import the pool")
	}
	return finding("policy", file, OK, fmt.Sprintf("identity %s may push under %s (its pool exists)", id, root), "")
}

// ParseServe parses the words after "serve" in a forced command as serve
// parses its flags.
type ParseServe func(args []string) (server.ServeConfig, error)

// AuthorizedKeysCheck checks the lines of an authorized_keys file that
// force zrep-stdinserver serve: each must be one sshd accepts, have
// restrict, and a command= whose serve flags, policy and identity work.
// policyFile, if not "", is the policy checked by PolicyCheck: a line
// naming another is pointed out.
func AuthorizedKeysCheck(file, policyFile string, parse ParseServe) Check {
	return func(context.Context) []Finding {
		data, err := os.ReadFile(file)
		if err != nil {
			return []Finding{finding("authorized_keys", file, Error, "cannot be read: "+err.Error(),
				"add a line for the backup host's key to the authorized_keys of the user serve runs as: "+exampleLine(policyFile, ""))}
		}
		var out []Finding
		zrepLines := 0
		for i, line := range bytes.Split(data, []byte{'\n'}) {
			subject := fmt.Sprintf("%s:%d", file, i+1)
			trimmed := bytes.TrimSpace(line)
			if len(trimmed) == 0 || trimmed[0] == '#' {
				continue
			}
			set, err := authkeys.Parse(trimmed, file)
			if err != nil {
				if bytes.Contains(trimmed, []byte("zrep-stdinserver")) {
					zrepLines++
					msg := strings.TrimPrefix(err.Error(), file+":1: ")
					out = append(out, finding("authorized_keys", subject, Error, "the zrep line is invalid, sshd skips it: "+msg,
						"rewrite it like: "+exampleLine(policyFile, "")))
				}
				continue
			}
			key, _, _, _, err := gossh.ParseAuthorizedKey(trimmed)
			if err != nil {
				continue
			}
			e, ok := set.Lookup(key)
			if !ok || !strings.Contains(e.Command, "zrep-stdinserver") {
				continue
			}
			zrepLines++
			out = append(out, checkZrepLine(subject, e, policyFile, parse)...)
		}
		if zrepLines == 0 {
			out = append(out, finding("authorized_keys", file, Error, "no line forces zrep-stdinserver serve: the backup host's key cannot reach the endpoint",
				"add the backup host's public key with a forced command: "+exampleLine(policyFile, "")))
		}
		return out
	}
}

// checkZrepLine checks one line whose command= runs zrep-stdinserver.
func checkZrepLine(subject string, e *authkeys.Entry, policyFile string, parse ParseServe) []Finding {
	var out []Finding
	bad := func(msg, fix string) { out = append(out, finding("authorized_keys", subject, Error, msg, fix)) }
	warn := func(msg, fix string) { out = append(out, finding("authorized_keys", subject, Warning, msg, fix)) }
	argv, err := authkeys.CommandArgs(e.Command)
	if err != nil {
		bad("the forced command is not a simple command: "+err.Error(), "write it as a plain command line: "+exampleLine(policyFile, ""))
		return out
	}
	if len(argv) < 2 || filepath.Base(argv[0]) != "zrep-stdinserver" || argv[1] != "serve" {
		bad(fmt.Sprintf("the forced command %q does not run zrep-stdinserver serve", e.Command), "force serve: "+exampleLine(policyFile, ""))
		return out
	}
	restricted := false
	for _, o := range e.Options {
		if strings.EqualFold(o, "restrict") {
			restricted = true
		}
	}
	if !restricted {
		bad("the zrep key lacks restrict: sshd lets it forward ports, the agent and X11, and open a pty",
			"put restrict first in its options: "+exampleLine(policyFile, ""))
	}
	if !e.HasFrom {
		warn("the zrep key has no from=\"...\": it works from any address",
			"add from=\"BACKUP_HOST_ADDRESS\" so that a stolen key is useless elsewhere")
	}
	switch st, err := os.Stat(argv[0]); {
	case !filepath.IsAbs(argv[0]):
		warn(fmt.Sprintf("the forced command runs %q through the PATH of sshd's session", argv[0]), "give the absolute path, e.g. "+servePath)
	case err != nil:
		bad(fmt.Sprintf("the forced command runs %s, which does not exist", argv[0]), "install zrep-stdinserver there, or correct the path")
	case st.Mode()&0o111 == 0 || st.IsDir():
		bad(fmt.Sprintf("the forced command runs %s, which is not an executable file", argv[0]), "install zrep-stdinserver there, or correct the path")
	}
	cfg, err := parse(argv[2:])
	if err != nil {
		bad("serve's flags in the forced command are wrong: "+err.Error(), "use exactly: "+exampleLine(policyFile, ""))
		return out
	}
	if cfg.PolicyFile == "" || cfg.Identity == "" {
		bad("the forced command lacks --policy FILE or --identity NAME: serve refuses every session", "use: "+exampleLine(policyFile, cfg.Identity))
		return out
	}
	p, err := policy.Load(cfg.PolicyFile)
	if err != nil {
		bad(fmt.Sprintf("the forced command's policy %s is unusable, serve refuses every session: %v", cfg.PolicyFile, err), "correct the policy file or the path")
		return out
	}
	if _, err := p.Identity(cfg.Identity); err != nil {
		bad(fmt.Sprintf("identity %q is not in the policy %s (it has %s): serve refuses every session", cfg.Identity, cfg.PolicyFile, strings.Join(p.Identities(), ", ")),
			"add the identity to the policy, or correct --identity")
		return out
	}
	if policyFile != "" && filepath.Clean(cfg.PolicyFile) != filepath.Clean(policyFile) {
		warn(fmt.Sprintf("the forced command uses the policy %s, not %s which doctor checked", cfg.PolicyFile, policyFile),
			"run doctor with --policy "+cfg.PolicyFile+" too, or point the line at the policy you mean")
	}
	if len(out) == 0 || !hasError(out) {
		comment := e.Comment
		if comment == "" {
			comment = e.Key.Type()
		}
		out = append([]Finding{finding("authorized_keys", subject, OK,
			fmt.Sprintf("key %s is forced into serve as identity %s of %s", comment, cfg.Identity, cfg.PolicyFile), "")}, out...)
	}
	return out
}

func hasError(fs []Finding) bool {
	for _, f := range fs {
		if f.Severity == Error {
			return true
		}
	}
	return false
}
