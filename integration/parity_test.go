package integration

// authorized_keys read by OpenSSH's sshd (the reference, 9.2 on Debian 12)
// and by zrep: the same lines must let in the same keys, or zrep must be
// the stricter one where it says so.

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/user"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/zrep/zrep/authkeys"
	"github.com/zrep/zrep/internal/testenv"
)

// openSSHLogsIn reports whether key logs in to the OpenSSH sshd s as the
// current user.
func openSSHLogsIn(t *testing.T, s *testenv.SSHD, auth gossh.AuthMethod) bool {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	hostPub, _, _, _, err := gossh.ParseAuthorizedKey([]byte(s.HostKeyPub))
	if err != nil {
		t.Fatal(err)
	}
	c, err := gossh.Dial("tcp", s.Addr, &gossh.ClientConfig{
		User:            u.Username,
		Auth:            []gossh.AuthMethod{auth},
		HostKeyCallback: gossh.FixedHostKey(hostPub),
		Timeout:         20 * time.Second,
	})
	if err != nil {
		if !strings.Contains(err.Error(), "unable to authenticate") {
			t.Fatalf("OpenSSH: %v", err)
		}
		return false
	}
	_ = c.Close()
	return true
}

// from= with a client on 127.0.0.1: the embedded sshd lets in exactly the
// keys OpenSSH lets in, except where it refuses on purpose (stricter).
func TestFromMatchesOpenSSH(t *testing.T) {
	f := newSSHDFixture(t)
	tests := []struct {
		from     string
		stricter bool // zrep refuses, whatever this OpenSSH does (server/from.go)
	}{
		{from: "127.0.0.1"},
		{from: "*,!127.0.0.1"},
		// glibc's inet_aton spellings of 127.0.0.1 (issue 8, finding 2).
		{from: "127.1"},
		{from: "*,!127.1"},
		{from: "*,!127.0.0.01"},
		{from: "*,!0177.0.0.1"},
		{from: "*,!2130706433"},
		{from: "*,!0x7f.1"},
		{from: "0x7f.0/8"},
		{from: "*,!0177.0/8"},
		{from: "127/8"}, // 0.0.0.127/8: host bits set, invalid
		// Not addresses: patterns that match nothing.
		{from: "*,!08.1"},
		{from: "*,!127.0.0.256"},
		{from: "*,!127.0.0.0/8x"},
		{from: "*,!" + strings.Repeat("0", 60) + "177.1"}, // too long for sshd's buffer
		// Wildcards, families, invalid criteria.
		{from: "127.0.0.?"},
		{from: "*,!127.0.*"},
		{from: "::1"},
		{from: "*,!::ffff:127.0.0.1"},
		{from: "127.0.0.0/33,*"},
		{from: "127.0.0.1,"},
		// OpenSSH 9.2 reads these as patterns, 9.8 and later as CIDR
		// blocks (or invalid ones): zrep refuses the key.
		{from: "127.0.0.0/+8,*", stricter: true},
		{from: "*,!127.0.0.0/+8", stricter: true},
	}
	var ours, theirs []string
	keys := make([]string, len(tests))
	for i, tt := range tests {
		var pub string
		keys[i], pub = f.newKey(t)
		opt := fmt.Sprintf("from=%q,", tt.from)
		ours = append(ours, f.forced(opt, f.zfs, pub))
		theirs = append(theirs, opt+`command="true" `+pub+"\n")
	}
	f.writeKeys(t, ours...)
	p := f.start(t)
	s := testenv.StartSSHD(t, strings.Join(theirs, ""))
	for i, tt := range tests {
		t.Run(tt.from, func(t *testing.T) {
			openssh := openSSHLogsIn(t, s, keyAuth(t, keys[i]))
			c, err := p.dial(keyAuth(t, keys[i]))
			zrep := err == nil
			if zrep {
				_ = c.Close()
			}
			switch {
			case tt.stricter && zrep:
				// OpenSSH 9.2 lets this key in, 9.8 and later may not.
				t.Errorf("from=%q: zrep logs in (OpenSSH %v); want it refused", tt.from, openssh)
			case !tt.stricter && zrep != openssh:
				t.Errorf("from=%q: OpenSSH logs in %v, zrep %v", tt.from, openssh, zrep)
			}
		})
	}
}

// A line OpenSSH skips (its key cannot log in) is an error for
// authkeys.Parse, and a line OpenSSH accepts parses.
func TestAuthorizedKeysOptionsMatchOpenSSH(t *testing.T) {
	requireSSHClient(t)
	dir := t.TempDir()
	options := []string{
		`environment="A=b"`,
		`environment="bad"`,
		`environment="A-B=c"`,
		`environment="=c"`,
		`permitopen="h:22",permitopen="[::1]:22",permitopen="h/22",permitopen="h:*",permitopen="h: 22"`,
		`permitopen="h:ssh"`,
		`permitopen="nohostport"`,
		`permitopen="h:0"`,
		`permitopen="h:65536"`,
		`permitopen="[::1]22"`,
		`permitopen="h:no-such-service-zrep"`,
		`permitlisten="8080"`,
		`permitlisten="h/8080"`,
		`tunnel="1"`,
		`tunnel="any"`,
		`tunnel="x"`,
		`tunnel="-1"`,
		`no-pty,restrict,no-agent-forwarding`,
		`nosuchoption`,
	}
	var lines []string
	keys := make([]string, len(options))
	for i, opt := range options {
		var pub string
		keys[i], pub = testenv.NewClientKey(t, dir)
		lines = append(lines, opt+`,command="true" `+pub+"\n")
	}
	s := testenv.StartSSHD(t, strings.Join(lines, ""))
	for i, opt := range options {
		t.Run(opt, func(t *testing.T) {
			openssh := openSSHLogsIn(t, s, keyAuth(t, keys[i]))
			_, err := authkeys.Parse([]byte(lines[i]), "authorized_keys")
			if openssh != (err == nil) {
				t.Errorf("OpenSSH logs in %v; authkeys.Parse: %v", openssh, err)
			}
		})
	}
}

// A certificate pasted where a key belongs: OpenSSH never lets it in, and
// authkeys.Parse refuses the line (issue 8, finding 1).
func TestCertificateLineMatchesOpenSSH(t *testing.T) {
	requireSSHClient(t)
	dir := t.TempDir()
	priv, _ := testenv.NewClientKey(t, dir)
	caPriv, _ := testenv.NewClientKey(t, dir)
	load := func(path string) gossh.Signer {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		sg, err := gossh.ParsePrivateKey(b)
		if err != nil {
			t.Fatal(err)
		}
		return sg
	}
	signer, ca := load(priv), load(caPriv)
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	cert := &gossh.Certificate{
		Key:             signer.PublicKey(),
		CertType:        gossh.UserCert,
		KeyId:           "zrep-test",
		ValidPrincipals: []string{u.Username},
		ValidBefore:     gossh.CertTimeInfinity, // valid, unrestricted
	}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	certSigner, err := gossh.NewCertSigner(cert, signer)
	if err != nil {
		t.Fatal(err)
	}
	line := `command="true" ` + strings.TrimSpace(string(gossh.MarshalAuthorizedKey(cert))) + "\n"
	s := testenv.StartSSHD(t, line)
	if openSSHLogsIn(t, s, gossh.PublicKeys(certSigner)) {
		t.Error("OpenSSH let in a certificate written on a key line")
	}
	if _, err := authkeys.Parse([]byte(line), "authorized_keys"); err == nil {
		t.Error("authkeys.Parse accepted a certificate on a key line")
	}
}
