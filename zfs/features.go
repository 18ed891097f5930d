package zfs

import (
	"strings"
)

// Features lists what the installed zfs command supports beyond what zfs-fuse 0.7 offers.
// It is detected from the usage text that zfs prints when run without arguments.
type Features struct {
	ListParsable    bool // zfs list -p (and zfs get -p)
	CreateUnmounted bool // zfs create -u
	Bookmarks       bool // zfs bookmark, #bookmarks in list and send -i
	RecvUnmounted   bool // zfs receive -u
	RecvExclude     bool // zfs receive -x PROPERTY (and -o PROPERTY=VALUE)
	ResumeTokens    bool // zfs receive -s / zfs send -t
	SendEstimate    bool // zfs send -n -v -P: a dry run that prints the stream's size
	Encryption      bool // encrypted datasets (zfs load-key), and the encryption property
	SendRaw         bool // zfs send -w: encrypted datasets as they are on disk
	// SendLargeBlocks, SendEmbedded and SendCompressed: zfs send -L, -e, -c.
	SendLargeBlocks, SendEmbedded, SendCompressed bool

	// Delegated: zfs runs as a user other than root, with what `zfs allow`
	// gave it. The kernel then refuses every received property the user
	// has no permission for (so receive -x is not needed, and only warns),
	// and nothing can be mounted. Not from the usage text: New sets it.
	Delegated bool
}

// DetectFeatures reads the usage text of zfs (what it prints when run without arguments)
// and reports the features it offers. It is pure; unknown text yields no features.
func DetectFeatures(usage string) Features {
	cmds := parseUsage(usage)
	has := func(cmd string, flag byte) bool {
		return strings.IndexByte(cmds[cmd], flag) >= 0
	}
	_, bookmark := cmds["bookmark"]
	_, loadKey := cmds["load-key"]
	return Features{
		ListParsable:    has("list", 'p'),
		CreateUnmounted: has("create", 'u'),
		Bookmarks:       bookmark,
		RecvUnmounted:   has("receive", 'u'),
		RecvExclude:     has("receive", 'x') && has("receive", 'o'),
		ResumeTokens:    has("receive", 's') && has("send", 't'),
		SendEstimate:    has("send", 'n') && has("send", 'v') && has("send", 'P'),
		Encryption:      loadKey,
		SendRaw:         has("send", 'w'),

		SendLargeBlocks: has("send", 'L'),
		SendEmbedded:    has("send", 'e'),
		SendCompressed:  has("send", 'c'),
	}
}

// usageLooksValid reports whether the text is a zfs usage text at all.
func usageLooksValid(usage string) bool {
	cmds := parseUsage(usage)
	for _, c := range []string{"list", "send", "receive", "get"} {
		if _, ok := cmds[c]; !ok {
			return false
		}
	}
	return true
}

// parseUsage maps each command of a zfs usage text to the option letters it accepts.
// Command lines start with a tab followed by the command name; continuation lines start
// with a tab and spaces. Options are collected from every usage line of the command:
// "[-vnF]", "[-r|-d max]", "[-[iI] snapshot]", "[-i|-I snapshot]", "-t <token>", "<-a | fs>".
func parseUsage(usage string) map[string]string {
	cmds := make(map[string]string)
	current := ""
	for line := range strings.SplitSeq(usage, "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.TrimSpace(line) == "":
			current = ""
			continue
		case len(line) > 1 && line[0] == '\t' && line[1] != ' ' && line[1] != '\t':
			rest := line[1:]
			name := rest
			if i := strings.IndexAny(rest, " \t"); i >= 0 {
				name, rest = rest[:i], rest[i:]
			} else {
				rest = ""
			}
			current = name
			cmds[current] += optionLetters(rest)
		case line[0] == ' ' || line[0] == '\t':
			if current != "" {
				cmds[current] += optionLetters(line)
			}
		default:
			current = ""
		}
	}
	return cmds
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// optionLetters returns the single-letter options mentioned in one usage line.
func optionLetters(s string) string {
	var out []byte
	for i := 0; i < len(s); i++ {
		if s[i] != '-' {
			continue
		}
		if i > 0 && strings.IndexByte(" \t[|<", s[i-1]) < 0 {
			continue // a hyphen inside a word, such as clone-filesystem
		}
		j := i + 1
		if j < len(s) && s[j] == '[' { // -[iI] or -[i|I]
			for j++; j < len(s) && s[j] != ']'; j++ {
				if isAlnum(s[j]) {
					out = append(out, s[j])
				}
			}
			i = j
			continue
		}
		for ; j < len(s) && isAlnum(s[j]); j++ {
			out = append(out, s[j])
		}
		i = j - 1
	}
	return string(out)
}
