package zfs

import (
	"os"
	"testing"
)

func readTestdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// OpenZFS 0.8 lines, as printed by that release.
const usageOpenZFS08 = `usage: zfs command args ...
where 'command' is one of the following:

	bookmark <snapshot> <bookmark>

	list [-Hp] [-r|-d max] [-o property[,...]] [-s property]...
	    [-S property]... [-t type[,...]] [filesystem|volume|snapshot] ...
	get [-rHp] [-d max] [-o "all" | field[,...]]
	    [-t type[,...]] [-s source[,...]]
	    <"all" | property[,...]> [filesystem|volume|snapshot|bookmark] ...

	send [-DnPpRvLecwhb] [-[i|I] snapshot] <snapshot>
	send [-nvPLecw] [-i snapshot|bookmark] <filesystem|volume|snapshot>
	send [-nvPe] -t <receive_resume_token>
	receive [-vnsFhu] [-o <property>=<value>] ... [-x <property>] ...
	    <filesystem|volume|snapshot>
	receive -A <filesystem|volume>
`

func TestDetectFeatures(t *testing.T) {
	tests := []struct {
		name  string
		usage string
		want  Features
	}{
		{"zfs-fuse 0.7", readTestdata(t, "usage-zfs-fuse-0.7.txt"), Features{}},
		{"OpenZFS 2.2", readTestdata(t, "usage-openzfs-2.2.txt"),
			Features{ListParsable: true, CreateUnmounted: true, Bookmarks: true, RecvUnmounted: true, RecvExclude: true, ResumeTokens: true, SendEstimate: true,
				Encryption: true, SendRaw: true, SendLargeBlocks: true, SendEmbedded: true, SendCompressed: true}},
		{"OpenZFS 0.8 (its usage lines as far as quoted: no load-key)", usageOpenZFS08,
			Features{ListParsable: true, Bookmarks: true, RecvUnmounted: true, RecvExclude: true, ResumeTokens: true, SendEstimate: true,
				SendRaw: true, SendLargeBlocks: true, SendEmbedded: true, SendCompressed: true}},
		{"send -t first", "\tlist [-Hp] [-r|-d max]\n\tsend -t [-evPn] <receive_resume_token>\n\treceive [-vnsF] <fs>\n",
			Features{ListParsable: true, ResumeTokens: true, SendEstimate: true, SendEmbedded: true}},
		{"resume needs both sides", "\tsend [-nvPe] -t <token>\n\treceive [-vnF] <fs>\n", Features{SendEstimate: true, SendEmbedded: true}},
		{"create -u", "\tcreate [-Pnpuv] [-o property=value] ... <filesystem>\n", Features{CreateUnmounted: true}},
		{"receive -u only", "\treceive [-vnFu] <filesystem|volume|snapshot>\n", Features{RecvUnmounted: true}},
		{"receive -x needs -o too", "\treceive [-vnF] [-x <property>] <filesystem>\n", Features{}},
		{"-p of another command does not count", "\tget [-rHp] <prop>\n\tlist [-rH][-d max]\n", Features{}},
		{"continuation lines belong to their command", "\tlist [-rH]\n\t    [-p]\n\tget [-u]\n", Features{ListParsable: true}},
		{"blank line ends a command", "\tlist [-rH]\n\n\t    [-p]\n", Features{}},
		{"untabbed text is not a command", "list [-Hp]\nbookmark x\n", Features{}},
		{"CRLF", "\tlist [-Hp] [-r|-d max]\r\n\tbookmark <snapshot> <bookmark>\r\n", Features{ListParsable: true, Bookmarks: true}},
		{"empty", "", Features{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DetectFeatures(tt.usage); got != tt.want {
				t.Errorf("DetectFeatures = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseUsageFlags(t *testing.T) {
	cmds := parseUsage(readTestdata(t, "usage-zfs-fuse-0.7.txt"))
	want := map[string]string{
		"list":    "rHdotsS",
		"send":    "RDpiI",
		"receive": "vnFvnFd",
		"get":     "rHpdos",
	}
	for cmd, flags := range want {
		if cmds[cmd] != flags {
			t.Errorf("zfs-fuse %s flags = %q, want %q", cmd, cmds[cmd], flags)
		}
	}
	cmds = parseUsage(readTestdata(t, "usage-openzfs-2.2.txt"))
	want = map[string]string{
		"list":     "HprdosSt",
		"rollback": "rRf",
		"bookmark": "",
		"receive":  "vMnsFhuoxvMnsFhuoxdeA",
		"send":     "DLPbcehnpsVvwiIRXDnVvPLecwiDnPpVvLecinVvPetPnVv",
	}
	for cmd, flags := range want {
		if got, ok := cmds[cmd]; !ok || got != flags {
			t.Errorf("OpenZFS %s flags = %q (present %v), want %q", cmd, got, ok, flags)
		}
	}
}

func TestOptionLetters(t *testing.T) {
	tests := map[string]string{
		" [-vnF] <filesystem|volume|snapshot>":   "vnF",
		" [-rH][-d max] [-o property[,...]]":     "rHdo",
		" [-RDp] [-[iI] snapshot] <snapshot>":    "RDpiI",
		" [-DnPpRvLec] [-[i|I] snapshot] <s>":    "DnPpRvLeciI",
		" [-i|-I snapshot]":                      "iI",
		" -t <receive_resume_token>":             "t",
		" <clone-filesystem> --redact <b> <s>":   "",
		" <-a | filesystem|mountpoint>":          "a",
		" [-o keylocation=<value>] [-0] (S-1-2)": "o0",
	}
	for in, want := range tests {
		if got := optionLetters(in); got != want {
			t.Errorf("optionLetters(%q) = %q, want %q", in, got, want)
		}
	}
}
