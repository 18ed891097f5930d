package zfs

import (
	"bufio"
	"bytes"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/pkg/errors"
)

// The properties zrep reads, in the order used on the command line (and
// their bits, for parseListOf); where zfs has encryption, also whether each
// dataset is encrypted, and where it has resumable receives, the tokens.
const listProps = "type,guid,createtxg,creation"

var listColumns = []uint8{haveType, haveGUID, haveTXG, haveCreation}

// entry is one dataset, snapshot or bookmark of a listing.
type entry struct {
	name     string
	typ      DatasetType
	guid     uint64
	txg      uint64
	creation int64
	encrypt  bool   // the encryption property is not "off"
	keyRoot  string // the encryptionroot property, if not "-"
	token    string // receive_resume_token, if not "-"
	have     uint8  // bits of what was set
}

const (
	haveType uint8 = 1 << iota
	haveGUID
	haveTXG
	haveCreation
	haveEncryption
	haveEncryptionRoot
	haveToken
	haveAll = haveType | haveGUID | haveTXG | haveCreation // what every version needs
)

// maxLine bounds one output line; names are shorter than 256 bytes, so this is generous.
const maxLine = 64 << 10

// readLines calls fn for each non-empty line of r, without its line ending.
// The slice passed to fn is only valid during the call.
func readLines(r io.Reader, fn func(line []byte) error) error {
	br := bufio.NewReaderSize(r, maxLine)
	n := 0
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			return errors.Errorf("zfs output line %d is longer than %d bytes", n+1, maxLine)
		}
		if err != nil && err != io.EOF {
			return err // zfs failed: its error matters, not a truncated last line
		}
		if len(line) > 0 {
			n++
			line = bytes.TrimRight(line, "\r\n")
			if len(line) > 0 {
				if ferr := fn(line); ferr != nil {
					return errors.Wrapf(ferr, "zfs output line %d", n)
				}
			}
		}
		if err == io.EOF {
			return nil
		}
	}
}

// parseUint parses a non-empty decimal number without sign.
func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (1<<64-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

func parseType(b []byte) DatasetType {
	switch string(b) {
	case "filesystem":
		return Filesystem
	case "volume":
		return Volume
	case "snapshot":
		return Snapshot
	case "bookmark":
		return Bookmark
	}
	return DatasetType(b)
}

// propBit maps a property name to its have bit (0 for properties zrep does not read).
func propBit(prop []byte) uint8 {
	switch string(prop) {
	case "type":
		return haveType
	case "guid":
		return haveGUID
	case "createtxg":
		return haveTXG
	case "creation":
		return haveCreation
	case "encryption":
		return haveEncryption
	case "encryptionroot":
		return haveEncryptionRoot
	}
	return 0
}

// setProp stores one property value in e.
func (e *entry) setProp(prop uint8, val []byte) error {
	switch prop {
	case haveType:
		e.typ = parseType(val)
		e.have |= haveType
	case haveGUID:
		v, ok := parseUint(val)
		if !ok {
			return errors.Errorf("%s: bad guid %q", e.name, val)
		}
		e.guid = v
		e.have |= haveGUID
	case haveTXG:
		v, ok := parseUint(val)
		if !ok {
			return errors.Errorf("%s: bad createtxg %q", e.name, val)
		}
		e.txg = v
		e.have |= haveTXG
	case haveCreation:
		v, ok := parseUint(val)
		if !ok || v > 1<<62 {
			return errors.Errorf("%s: bad creation %q", e.name, val)
		}
		e.creation = int64(v)
		e.have |= haveCreation
	case haveEncryption:
		e.encrypt = len(val) > 0 && string(val) != "off" && string(val) != "-"
		e.have |= haveEncryption
	case haveEncryptionRoot:
		if len(val) > 0 && string(val) != "-" {
			e.keyRoot = string(val)
		}
		e.have |= haveEncryptionRoot
	case haveToken:
		if len(val) > 0 && string(val) != "-" {
			if err := validToken(string(val)); err != nil {
				return errors.WithMessagef(err, "%s: receive_resume_token %q", e.name, truncate(string(val), 40))
			}
			e.token = string(val)
		}
		e.have |= haveToken
	}
	return nil
}

// parseGet parses `zfs get -H -p -o name,property,value type,guid,createtxg,creation` output.
func parseGet(r io.Reader) ([]entry, error) {
	var entries []entry
	index := make(map[string]int)
	cur := -1
	err := readLines(r, func(line []byte) error {
		t1 := bytes.IndexByte(line, '\t')
		if t1 < 0 {
			return errors.Errorf("expected name<TAB>property<TAB>value, got %q", line)
		}
		name, rest := line[:t1], line[t1+1:]
		t2 := bytes.IndexByte(rest, '\t')
		if t2 < 0 || len(name) == 0 {
			return errors.Errorf("expected name<TAB>property<TAB>value, got %q", line)
		}
		prop, val := rest[:t2], rest[t2+1:]
		if cur < 0 || string(name) != entries[cur].name {
			if i, ok := index[string(name)]; ok {
				cur = i
			} else {
				entries = append(entries, entry{name: string(name)})
				cur = len(entries) - 1
				index[entries[cur].name] = cur
			}
		}
		// Values of filesystems and volumes are not used; tolerate "-" there.
		if err := entries[cur].setProp(propBit(prop), val); err != nil && bytes.ContainsAny(name, "@#") {
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return entries, nil
}

// parseList parses `zfs list -H -p -o name,type,guid,createtxg,creation` output.
func parseList(r io.Reader) ([]entry, error) {
	return parseListOf(r, listColumns)
}

// parseListOf parses `zfs list -H -p -o name,PROPS` output whose columns
// after the name are props.
func parseListOf(r io.Reader, props []uint8) ([]entry, error) {
	var entries []entry
	fields := len(props) + 1
	err := readLines(r, func(line []byte) error {
		t := bytes.IndexByte(line, '\t')
		if t <= 0 {
			return errors.Errorf("expected %d tab-separated fields, got %q", fields, line)
		}
		e := entry{name: string(line[:t])}
		isVersion := strings.ContainsAny(e.name, "@#")
		rest := line[t+1:]
		for i, p := range props {
			var field []byte
			if i < len(props)-1 {
				t = bytes.IndexByte(rest, '\t')
				if t < 0 {
					return errors.Errorf("expected %d tab-separated fields, got %q", fields, line)
				}
				field, rest = rest[:t], rest[t+1:]
			} else {
				if bytes.IndexByte(rest, '\t') >= 0 {
					return errors.Errorf("expected %d tab-separated fields, got %q", fields, line)
				}
				field = rest
			}
			if err := e.setProp(p, field); err != nil && isVersion {
				return err
			}
		}
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return entries, nil
}

// underRoot reports whether name is root or below it ("" is the root of everything).
func underRoot(name, root string) bool {
	return root == "" || name == root ||
		len(name) > len(root) && name[len(root)] == '/' && strings.HasPrefix(name, root)
}

// buildTree groups entries into datasets with their versions, keeping only datasets at
// or below root. Entries of unknown types are ignored.
func buildTree(entries []entry, root string) ([]DatasetVersions, error) {
	var out []DatasetVersions
	index := make(map[string]int)
	for i := range entries {
		e := &entries[i]
		if e.have&haveType == 0 {
			return nil, errors.Errorf("zfs output has no type for %q", e.name)
		}
		if e.typ != Filesystem && e.typ != Volume {
			continue
		}
		if strings.ContainsAny(e.name, "@#") {
			return nil, errors.Errorf("zfs output lists %s %q", e.typ, e.name)
		}
		if !underRoot(e.name, root) {
			continue
		}
		if _, dup := index[e.name]; dup {
			continue
		}
		index[e.name] = len(out)
		out = append(out, DatasetVersions{Dataset: Dataset{Name: e.name, Type: e.typ, Encrypted: e.encrypt, EncryptionRoot: keyRoot(e), ResumeToken: e.token}})
	}
	for i := range entries {
		e := &entries[i]
		var sep byte
		switch e.typ {
		case Snapshot:
			sep = '@'
		case Bookmark:
			sep = '#'
		default:
			continue
		}
		at := strings.IndexAny(e.name, "@#")
		if at <= 0 || e.name[at] != sep || at == len(e.name)-1 {
			return nil, errors.Errorf("zfs output lists %s %q", e.typ, e.name)
		}
		if e.have&haveAll != haveAll {
			return nil, errors.Errorf("zfs output lacks guid, createtxg or creation of %q", e.name)
		}
		ds := e.name[:at]
		j, ok := index[ds]
		if !ok {
			if !underRoot(ds, root) {
				continue
			}
			return nil, errors.Errorf("zfs output lists %q but not its dataset", e.name)
		}
		out[j].Versions = append(out[j].Versions, Version{
			Name:      e.name,
			Type:      e.typ,
			GUID:      e.guid,
			CreateTXG: e.txg,
			Creation:  time.Unix(e.creation, 0).UTC(),
		})
	}
	slices.SortFunc(out, func(a, b DatasetVersions) int { return strings.Compare(a.Name, b.Name) })
	for i := range out {
		slices.SortFunc(out[i].Versions, compareVersions)
	}
	return out, nil
}

// keyRoot is e's encryption root, "" unless it is encrypted and the root is
// a valid dataset name.
func keyRoot(e *entry) string {
	if !e.encrypt || ValidateDatasetName(e.keyRoot) != nil {
		return ""
	}
	return e.keyRoot
}

// parseDatasets parses `zfs list -H -o name,type[,encryption]` output,
// keeping filesystems and volumes.
func parseDatasets(r io.Reader, encryption bool) ([]Dataset, error) {
	var out []Dataset
	want := 2
	if encryption {
		want = 3
	}
	err := readLines(r, func(line []byte) error {
		fields := bytes.Split(line, []byte{'\t'})
		if len(fields) != want || len(fields[0]) == 0 {
			return errors.Errorf("expected %d tab-separated fields, got %q", want, line)
		}
		typ := parseType(fields[1])
		if typ != Filesystem && typ != Volume {
			return nil
		}
		name := string(fields[0])
		if strings.ContainsAny(name, "@#") {
			return errors.Errorf("zfs output lists %s %q", typ, name)
		}
		d := Dataset{Name: name, Type: typ}
		if encryption {
			e := entry{}
			_ = e.setProp(haveEncryption, fields[2])
			d.Encrypted = e.encrypt
		}
		out = append(out, d)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Dataset) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
