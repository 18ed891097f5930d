package doctor

import (
	"context"
	"fmt"
	"strings"

	"github.com/pkg/errors"

	"github.com/zrep/zrep/api"
	"github.com/zrep/zrep/client"
	"github.com/zrep/zrep/pullconfig"
	"github.com/zrep/zrep/rpc"
	"github.com/zrep/zrep/zfs"
)

// ProbeCommand is the remote command doctor asks ssh to run. No such
// program exists: a key forced into serve never runs it (serve starts and
// logs it as SSH_ORIGINAL_COMMAND), while a key without a forced command
// makes the source's shell fail with status 127, "not found".
var ProbeCommand = []string{"zrep-doctor-probe-not-forced"}

// Session is a session with a source that completed the protocol
// handshake; *client.Source implements it.
type Session interface {
	ServerVersion() string
	ListFilesystems(ctx context.Context, withVersions bool) ([]api.Filesystem, error)
	Close() error
}

// Dial opens a session with a source as pull would, but asking for
// ProbeCommand.
type Dial func(ctx context.Context, s pullconfig.Source) (Session, error)

// ConfigCheck reports whether the pull configuration parses.
func ConfigCheck(file string, err error, sources int) Check {
	return func(context.Context) []Finding {
		if err != nil {
			return []Finding{finding("config", file, Error, "unusable: "+err.Error(),
				"correct it (a syntax error names the line); pull --help shows the keys")}
		}
		return []Finding{finding("config", file, OK, fmt.Sprintf("parses: %d source(s)", sources), "")}
	}
}

// SessionCheck connects to a source as pull would: the source must be
// reachable, its host key known, the key accepted and forced into serve
// (a completed protocol handshake proves all four), and the datasets the
// configuration names visible to the key.
func SessionCheck(s pullconfig.Source, dial Dial) Check {
	return func(ctx context.Context) []Finding {
		subject := fmt.Sprintf("source %s (%s)", s.Name, s.SSH)
		sess, err := dial(ctx, s)
		if err != nil {
			return []Finding{sessionFailure(subject, s, err)}
		}
		defer sess.Close()
		out := []Finding{finding("ssh", subject, OK, fmt.Sprintf("reachable, host key known, key accepted and forced into serve (zrep %s there)", sess.ServerVersion()), "")}
		fss, err := sess.ListFilesystems(ctx, false)
		if err != nil {
			return append(out, finding("ssh", subject, Error, "listing the datasets the key may see failed: "+err.Error(),
				"look at serve's log on the source (--log-file in the forced command, or sshd's log)"))
		}
		visible := map[string]bool{}
		for _, fs := range fss {
			visible[fs.Name] = true
		}
		switch {
		case len(s.Datasets) == 0 && len(fss) == 0:
			out = append(out, finding("datasets", subject, Warning, "the key may see no dataset: pull has nothing to do",
				"allow datasets to its identity in the source's policy (zrep-stdinserver policy check shows why one is denied)"))
		case len(s.Datasets) == 0:
			out = append(out, finding("datasets", subject, OK, fmt.Sprintf("the key may see %d dataset(s)", len(fss)), ""))
		}
		var hidden []string
		for _, ds := range s.Datasets {
			if !visible[ds] {
				hidden = append(hidden, ds)
			}
		}
		if len(hidden) > 0 {
			out = append(out, finding("datasets", subject, Error,
				fmt.Sprintf("the configuration names %s, which the key does not see: it does not exist on the source, or the policy denies it", strings.Join(hidden, ", ")),
				"on the source: zrep-stdinserver policy check --policy FILE --identity NAME "+strings.Join(hidden, " ")))
		} else if len(s.Datasets) > 0 {
			out = append(out, finding("datasets", subject, OK, "the key sees every dataset the configuration names", ""))
		}
		return out
	}
}

// sessionFailure explains why a session could not be opened.
func sessionFailure(subject string, s pullconfig.Source, err error) Finding {
	host := s.SSH[strings.LastIndexByte(s.SSH, '@')+1:]
	port := ""
	if s.Port != 0 {
		port = fmt.Sprintf("-p %d ", s.Port)
	}
	identity := s.Identity
	if identity == "" {
		identity = "the key"
	}
	var sshErr *client.SSHError
	if errors.As(err, &sshErr) {
		msg := err.Error()
		switch sshErr.Kind {
		case client.ConnectionRefused, client.HostUnresolved, client.HostUnreachable, client.Timeout:
			return finding("ssh", subject, Error, "not reachable: "+msg,
				"check the host name and port in the configuration, the network and firewall, and that sshd runs on the source")
		case client.ConnectionClosed:
			return finding("ssh", subject, Error, "the source closed the connection: "+msg,
				"look at sshd's log on the source (MaxStartups, AllowUsers, a firewall resetting connections)")
		case client.HostKeyUnknown:
			return finding("ssh", subject, Error, "the source's host key is not known: "+msg,
				fmt.Sprintf("compare the fingerprint of ssh-keyscan %s%s with the one the source shows (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then add it to root's known_hosts (or the UserKnownHostsFile in ssh_options)", port, host))
		case client.HostKeyChanged:
			return finding("ssh", subject, Error, "the source's host key CHANGED: someone may be intercepting, or the source was reinstalled: "+msg,
				fmt.Sprintf("find out why; only if the new key is the source's own, replace the old one (ssh-keygen -R %s)", host))
		case client.AuthRefused:
			return finding("ssh", subject, Error, "the source refused the key: "+msg,
				fmt.Sprintf("add the public key of %s to the authorized_keys of %s on the source, as %s", identity, s.SSH, exampleLine("", "")))
		case client.RemoteCommandFailed:
			if sshErr.ExitCode == 127 {
				return finding("ssh", subject, Error, "the key is accepted but not forced into serve: sshd ran the command the client asked for ("+strings.Join(ProbeCommand, " ")+", which does not exist)",
					"give the key's authorized_keys line a forced command: "+exampleLine("", ""))
			}
			return finding("ssh", subject, Error, "the key's forced command did not start the zrep endpoint: "+msg,
				"its command= must run zrep-stdinserver serve --policy FILE --identity NAME; run zrep-stdinserver doctor --policy FILE on the source")
		}
		return finding("ssh", subject, Error, "ssh failed: "+msg, "run ssh -v with the same options to see why")
	}
	if errors.Is(err, rpc.ErrHandshake) || isProtocol(err) {
		return finding("ssh", subject, Error, "the key is accepted, but what it runs does not speak zrep's protocol: "+err.Error(),
			"its command= must run zrep-stdinserver serve, the same version or a compatible one")
	}
	return finding("ssh", subject, Error, "no session with the source: "+err.Error(), "run ssh -v with the same options to see why")
}

func isProtocol(err error) bool {
	var pe *rpc.ProtocolError
	return errors.As(err, &pe)
}

// PropertyGetter reads dataset properties; *zfs.ZFS implements it.
type PropertyGetter interface {
	Exists(ctx context.Context, name string) (bool, error)
	GetProperties(ctx context.Context, dataset string, props ...string) (map[string]string, error)
}

// TargetCheck checks a source's root on this host: its pool exists, and
// the root, if it exists, is never mounted (mountpoint=none), so that
// nothing received below it is mounted either.
func TargetCheck(s pullconfig.Source, z PropertyGetter) Check {
	return func(ctx context.Context) []Finding {
		subject := fmt.Sprintf("%s (source %s)", s.Root, s.Name)
		pool, _, _ := strings.Cut(s.Root, "/")
		props, err := z.GetProperties(ctx, s.Root, "mountpoint", "canmount")
		if errors.Is(err, zfs.ErrNotFound) {
			ok, perr := z.Exists(ctx, pool)
			switch {
			case perr != nil:
				return []Finding{finding("target", subject, Error, "cannot tell whether the pool exists: "+perr.Error(), "check that zfs works on this host (zpool list)")}
			case !ok:
				return []Finding{finding("target", subject, Error, fmt.Sprintf("the pool %s does not exist on this host: every pull of this source fails", pool),
					"correct root in the configuration, or import the pool")}
			}
			return []Finding{finding("target", subject, OK, "does not exist yet: the first pull as root creates it with mountpoint=none (a pull as another user cannot: see the delegation finding)", "")}
		}
		if err != nil {
			return []Finding{finding("target", subject, Error, "cannot read its properties: "+err.Error(), "check that zfs works on this host (zfs list)")}
		}
		mp, canmount := props["mountpoint"], props["canmount"]
		switch {
		case mp == "none":
			return []Finding{finding("target", subject, OK, "exists with mountpoint=none: nothing received below it is mounted", "")}
		case canmount == "off":
			return []Finding{finding("target", subject, Warning,
				fmt.Sprintf("exists with canmount=off: it is not mounted, but the datasets received below it inherit mountpoint=%s and can be mounted (zfs mount -a at boot)", mp),
				"zfs set mountpoint=none "+s.Root)}
		}
		return []Finding{finding("target", subject, Error,
			fmt.Sprintf("exists and can be mounted (mountpoint=%s, canmount=%s): the datasets received below it inherit the mountpoint, and a source could put files there", mp, canmount),
			"zfs set mountpoint=none "+s.Root)}
	}
}
