package authkeys

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"
)

// testKeys are generated once: three ed25519 keys, an ECDSA and an RSA key.
var testKeys = func() (keys struct{ ed1, ed2, ed3, ec, rsa gossh.PublicKey }) {
	ed := func() gossh.PublicKey {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		return mustPublicKey(pub)
	}
	keys.ed1, keys.ed2, keys.ed3 = ed(), ed(), ed()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	keys.ec = mustPublicKey(&ec.PublicKey)
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	keys.rsa = mustPublicKey(&rk.PublicKey)
	return keys
}()

func mustPublicKey(pub any) gossh.PublicKey {
	k, err := gossh.NewPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return k
}

// testCert is a user certificate for testKeys.ed1, signed by a fresh CA,
// carrying every limit a certificate can: expired, valid only from
// 10.9.9.9 and forced to run /bin/false.
var testCert = func() *gossh.Certificate {
	_, caPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	ca, err := gossh.NewSignerFromKey(caPriv)
	if err != nil {
		panic(err)
	}
	cert := &gossh.Certificate{
		Key:             testKeys.ed1,
		Serial:          1,
		CertType:        gossh.UserCert,
		KeyId:           "backup1",
		ValidPrincipals: []string{"root"},
		ValidAfter:      1,
		ValidBefore:     2, // expired in 1970
		Permissions: gossh.Permissions{CriticalOptions: map[string]string{
			"source-address": "10.9.9.9/32",
			"force-command":  "/bin/false",
		}},
	}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		panic(err)
	}
	return cert
}()

// authorized formats key as "type base64", without comment or newline.
func authorized(key gossh.PublicKey) string {
	return strings.TrimSuffix(string(gossh.MarshalAuthorizedKey(key)), "\n")
}

func TestParse(t *testing.T) {
	k := testKeys
	// Indexed by line number.
	lines := []string{
		1:  "# zrep pullers",
		2:  "",
		3:  `command="zrep-stdinserver serve --identity backup-a",restrict ` + authorized(k.ed1) + " backup-a@host",
		4:  `  # indented comment`,
		5:  `restrict,command="zrep-stdinserver serve --datasets a,b --policy \"/etc/zrep/p y.yaml\"",no-pty ` + authorized(k.ec) + " with spaces in comment",
		6:  "\t",
		7:  `from="10.0.0.0/8,!10.0.0.1",COMMAND="printf a\b\\ x" ` + authorized(k.rsa),
		8:  authorized(k.ed2) + " plain key, no options\r",       // CRLF
		9:  `command="second line for ed1" ` + authorized(k.ed1), // duplicate: ignored
		10: `cert-authority,command="ca" ` + authorized(k.ed3),   // not a user key: skipped
		11: `  ,no-Pty,,No-Agent-Forwarding,Restrict, ` + authorized(k.ed3) + " after the CA line",
	}
	file := strings.Join(lines[1:], "\n")
	set, err := Parse([]byte(file), "authorized_keys")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		key  gossh.PublicKey
		want Entry
	}{
		{"forced command", k.ed1, Entry{
			Comment: "backup-a@host",
			Options: []string{`command="zrep-stdinserver serve --identity backup-a"`, "restrict"},
			Command: "zrep-stdinserver serve --identity backup-a",
			Line:    3,
		}},
		{"quoted commas and escaped quotes", k.ec, Entry{
			Comment: "with spaces in comment",
			Options: []string{"restrict", `command="zrep-stdinserver serve --datasets a,b --policy \"/etc/zrep/p y.yaml\""`, "no-pty"},
			Command: `zrep-stdinserver serve --datasets a,b --policy "/etc/zrep/p y.yaml"`,
			Line:    5,
		}},
		{"from and other backslashes", k.rsa, Entry{
			Options: []string{`from="10.0.0.0/8,!10.0.0.1"`, `COMMAND="printf a\b\\ x"`},
			Command: `printf a\b\\ x`,
			From:    "10.0.0.0/8,!10.0.0.1", HasFrom: true,
			Line: 7,
		}},
		{"no options", k.ed2, Entry{Comment: "plain key, no options", Line: 8}},
		{"cert-authority line skipped", k.ed3, Entry{
			Comment: "after the CA line",
			Options: []string{"no-Pty", "No-Agent-Forwarding", "Restrict"},
			Line:    11,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := set.Lookup(tt.key)
			if !ok {
				t.Fatal("Lookup: not found")
			}
			if !reflect.DeepEqual(got.Key.Marshal(), tt.key.Marshal()) {
				t.Errorf("Key = %s; want %s", got.Key.Type(), tt.key.Type())
			}
			g := *got
			g.Key = nil
			if !reflect.DeepEqual(g, tt.want) {
				t.Errorf("Lookup =\n %#v\nwant\n %#v", g, tt.want)
			}
		})
	}
	if got, want := set.Len(), 5; got != want {
		t.Errorf("Len() = %d; want %d", got, want)
	}
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	if e, ok := set.Lookup(mustPublicKey(other)); ok || e != nil {
		t.Errorf("Lookup(unknown key) = %v, %t", e, ok)
	}
	if e, ok := set.Lookup(nil); ok || e != nil {
		t.Errorf("Lookup(nil) = %v, %t", e, ok)
	}
}

func TestParseEmpty(t *testing.T) {
	for _, in := range []string{"", "\n\n", "# only a comment\n", "  \t\r\n# x"} {
		set, err := Parse([]byte(in), "authorized_keys")
		if err != nil || set.Len() != 0 {
			t.Errorf("Parse(%q) = %v, %v; want an empty set", in, set, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	key := authorized(testKeys.ed1)
	good := `command="zrep" ` + key
	tests := []struct {
		name, line string
		want       string // the error, after "authorized_keys:2: "
	}{
		{"garbage", "not a key at all", "ssh: no key found"},
		{"truncated key", key[:len(key)-8], "ssh: no key found"},
		{"type mismatch", "ssh-rsa " + strings.Fields(key)[1], "ssh: no key found"},
		{"only options", `command="x",restrict`, "ssh: no key found"},
		{"unterminated quote", `command="x ` + key, "ssh: no key found"},
		{"backslash before the closing quote", `command="x\" ` + key, "ssh: no key found"},
		{"NUL", good + " co\x00mment", "NUL byte in line"},
		{"unknown option", "no-such-option " + key, `bad key options: unknown key option "no-such-option"`},
		{"typo", "no-port-fowarding " + key, `bad key options: unknown key option "no-port-fowarding"`},
		{"restrict not negatable", "no-restrict " + key, `bad key options: unknown key option "no-restrict"`},
		{"flag with value", `pty="x" ` + key, `bad key options: unknown key option "pty=\"x\""`},
		{"prefix of a flag", "restricted " + key, `bad key options: unknown key option "restricted"`},
		{"value option without =", "command " + key, `bad key options: unknown key option "command"`},
		{"unquoted value", "command=zrep " + key, "bad key options: missing start quote"},
		{"text after quote", `command="zrep"x ` + key, `bad key options: unknown key option "command=\"zrep\"x" (text after the closing quote)`},
		{"two commands", `command="a",command="b" ` + key, `bad key options: multiple "command" clauses`},
		{"two commands, mixed case", `command="a",Command="b" ` + key, `bad key options: multiple "command" clauses`},
		{"two froms", `from="a",from="b",command="c" ` + key, `bad key options: multiple "from" clauses`},
		{"principals on a plain key", `principals="x",command="c" ` + key, "bad key options: principals on non-CA key"},
		{"expiry-time", `expiry-time="20300101",command="c" ` + key, "bad key options: expiry-time is not supported by the embedded server"},
		{"verify-required", `verify-required,command="c" ` + key, "bad key options: verify-required is not supported by the embedded server"},

		// Values sshd's sshauthopt_parse refuses, skipping the line.
		{"environment without =", `environment="bad",command="c" ` + key, `bad key options: invalid environment string "bad"`},
		{"environment without a name", `environment="=x",command="c" ` + key, `bad key options: invalid environment string "=x"`},
		{"environment name with a space", `environment="A B=c",command="c" ` + key, `bad key options: invalid environment string "A B=c"`},
		{"environment name with a dash", `environment="A-B=c",command="c" ` + key, `bad key options: invalid environment string "A-B=c"`},
		{"environment name not ASCII", `environment="É=c",command="c" ` + key, `bad key options: invalid environment string "É=c"`},
		{"environment unquoted", `environment=A=b,command="c" ` + key, "bad key options: missing start quote"},
		{"too many environment strings", strings.Repeat(`environment="A=b",`, 3) + manyEnv(1025) + `command="c" ` + key, "bad key options: too many environment strings"},
		{"permitopen without a port", `permitopen="nohostport",command="c" ` + key, `bad key options: invalid permission port in permitopen="nohostport"`},
		{"permitopen empty port", `permitopen="host:",command="c" ` + key, `bad key options: invalid permission port in permitopen="host:"`},
		{"permitopen port 0", `permitopen="host:0",command="c" ` + key, `bad key options: invalid permission port in permitopen="host:0"`},
		{"permitopen port too big", `permitopen="host:65536",command="c" ` + key, `bad key options: invalid permission port in permitopen="host:65536"`},
		{"permitopen negative port", `permitopen="host:-22",command="c" ` + key, `bad key options: invalid permission port in permitopen="host:-22"`},
		{"permitopen unknown service", `permitopen="host:no-such-service-zrep",command="c" ` + key, `bad key options: invalid permission port in permitopen="host:no-such-service-zrep"`},
		{"permitopen two ports", `permitopen="host:1:2",command="c" ` + key, `bad key options: invalid permission port in permitopen="host:1:2"`},
		{"permitopen bare IPv6", `permitopen="::1:22",command="c" ` + key, `bad key options: invalid permission port in permitopen="::1:22"`},
		{"permitopen unclosed bracket", `permitopen="[::1:22",command="c" ` + key, `bad key options: invalid permission hostname in permitopen="[::1:22"`},
		{"permitopen bracket then port", `permitopen="[::1]22",command="c" ` + key, `bad key options: invalid permission hostname in permitopen="[::1]22"`},
		{"permitopen host too long", `permitopen="` + strings.Repeat("h", 1025) + `:22",command="c" ` + key, "bad key options: invalid permission hostname in permitopen="},
		{"too many permitopen", manyPermit("permitopen", 4098) + `command="c" ` + key, "bad key options: too many permission directives"},
		{"permitlisten not a port", `permitlisten="http-alt-zrep",command="c" ` + key, `bad key options: invalid permission port in permitlisten="http-alt-zrep"`},
		{"permitlisten host/port", `permitlisten="host/8080",command="c" ` + key, `bad key options: invalid permission port in permitlisten="host/8080"`}, // no ':', so sshd reads *:host/8080
		{"permitlisten port 0", `permitlisten="0",command="c" ` + key, `bad key options: invalid permission port in permitlisten="0"`},
		{"tunnel not a number", `tunnel="x",command="c" ` + key, `bad key options: invalid tun device "x"`},
		{"tunnel negative", `tunnel="-1",command="c" ` + key, `bad key options: invalid tun device "-1"`},
		{"tunnel too big", `tunnel="2147483646",command="c" ` + key, `bad key options: invalid tun device "2147483646"`},
		{"tunnel empty", `tunnel="",command="c" ` + key, `bad key options: invalid tun device ""`},

		// sshd never takes a certificate written where a key belongs as a
		// key: it skips the line (auth2-pubkeyfile.c compares a presented
		// certificate only with cert-authority keys, and a plain key only
		// with plain keys), so its limits cannot be bypassed by pasting it.
		{"certificate on a key line", `command="c" ` + authorized(testCert), "ssh-ed25519-cert-v01@openssh.com is a certificate"},
		{"certificate without options", authorized(testCert), "ssh-ed25519-cert-v01@openssh.com is a certificate"},
		{"certificate on a cert-authority line", `cert-authority ` + authorized(testCert), "ssh-ed25519-cert-v01@openssh.com is a certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(good+"\n"+tt.line+"\n"+good+"\n"), "authorized_keys")
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			if want := "authorized_keys:2: " + tt.want; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error\n got: %v\nwant: %s...", err, want)
			}
		})
	}
}

func TestParseAcceptsWhatSshdAccepts(t *testing.T) {
	key := authorized(testKeys.ed1)
	for _, opts := range []string{
		"no-verify-required,no-touch-required,touch-required",
		"no-X11-forwarding,x11-forwarding,PORT-FORWARDING,no-user-rc,user-rc,pty",
		`environment="A=b",environment="C=d",permitopen="h:1",permitopen="h:2",permitlisten="8080",tunnel="1"`,
		// Every value sshd's sshauthopt_parse accepts.
		`environment="A=",environment="_a1=x y=z",environment="A=again"`, // a repeated name: the first wins
		manyEnv(1025), // distinct names: sshd refuses only the 1026th
		`permitopen="h:*",permitopen="h/22",permitopen="[::1]:22",permitopen="[::1]/22",permitopen=":22",permitopen="*:65535",permitopen="h:+22",permitopen="h: 22",permitopen="h:022"`,
		`permitopen="h:ssh"`, // a service name, as getservbyname reads /etc/services
		`permitopen="` + strings.Repeat("h", 1024) + `:22"`,
		manyPermit("permitopen", 4097) + manyPermit("permitlisten", 4097),
		`permitlisten="localhost:8080",permitlisten="[::1]:8080",permitlisten="*:*",permitlisten="*"`,
		`tunnel="0",tunnel="any",tunnel="ANY",tunnel="2147483645",tunnel="+7"`,
		`cert-authority,principals="a,b"`,
		`command=""`,
	} {
		if _, err := Parse([]byte(opts+" "+key), "authorized_keys"); err != nil {
			t.Errorf("%s: %v", opts, err)
		}
	}
}

// manyEnv is n environment= options with distinct names, each followed by
// a comma.
func manyEnv(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `environment="V%d=x",`, i)
	}
	return b.String()
}

// manyPermit is n name="h:PORT" options, each followed by a comma.
func manyPermit(name string, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `%s="h:%d",`, name, i%65535+1)
	}
	return b.String()
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "authorized_keys")
	text := `command="zrep-stdinserver serve --identity b1" ` + authorized(testKeys.ed1) + "\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	set, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := set.Lookup(testKeys.ed1); !ok || e.Command != "zrep-stdinserver serve --identity b1" || e.Line != 1 {
		t.Errorf("Lookup = %+v, %t", e, ok)
	}

	if err := os.WriteFile(path, []byte(text+"bogus\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.HasPrefix(err.Error(), path+":2: ") {
		t.Errorf("Load(bad) error = %v; want it to start with %s:2:", err, path)
	}

	_, err = Load(filepath.Join(dir, "missing"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) error = %v; want a wrapped os.ErrNotExist", err)
	}
}

// TestForcedCommandToArgv follows a key from its authorized_keys line to
// the argv sshd's shell would run.
func TestForcedCommandToArgv(t *testing.T) {
	line := `restrict,command="/usr/local/bin/zrep-stdinserver serve --policy \"/etc/zrep/policy.yaml\" --identity 'backup 1'" ` + authorized(testKeys.ec)
	set, err := Parse([]byte(line), "authorized_keys")
	if err != nil {
		t.Fatal(err)
	}
	e, ok := set.Lookup(testKeys.ec)
	if !ok {
		t.Fatal("key not found")
	}
	args, err := CommandArgs(e.Command)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/usr/local/bin/zrep-stdinserver", "serve", "--policy", "/etc/zrep/policy.yaml", "--identity", "backup 1"}
	if !reflect.DeepEqual(args, want) {
		t.Errorf("argv = %q; want %q", args, want)
	}
}

// TestServicePort reads a services file as getservbyname does: exact names
// and aliases, TCP only, and nothing without the file.
func TestServicePort(t *testing.T) {
	path := filepath.Join(t.TempDir(), "services")
	if err := os.WriteFile(path, []byte("# comment\nssh\t\t22/tcp\t\t\t# SSH\nhttp 80/tcp www\ndomain 53/udp\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int{"ssh": 22, "www": 80, "http": 80, "SSH": -1, "domain": -1, "nope": -1, "#": -1} {
		if got := servicePort(path, name); got != want {
			t.Errorf("servicePort(%q) = %d, want %d", name, got, want)
		}
	}
	if got := servicePort(filepath.Join(t.TempDir(), "missing"), "ssh"); got != -1 {
		t.Errorf("without the file: %d, want -1 (sshd refuses the name then)", got)
	}
}
