package nvlist_test

import (
	"fmt"

	"github.com/zrep/zrep/nvlist"
)

func Example() {
	token := &nvlist.List{Flags: nvlist.UniqueName, Pairs: []nvlist.Pair{
		{Name: "toguid", Type: nvlist.Uint64, Value: uint64(0x94a20a5f25877859)},
		{Name: "toname", Type: nvlist.String, Value: "pool/fs@snap"},
		{Name: "rawok", Type: nvlist.Boolean},
	}}
	b, err := nvlist.Pack(token, nvlist.Native)
	if err != nil {
		panic(err)
	}

	l, enc, err := nvlist.Unpack(b, nvlist.Limits{})
	if err != nil {
		panic(err)
	}
	name, _ := l.String("toname")
	guid, _ := l.Uint64("toguid")
	fmt.Println(enc, len(b), name, guid, l.Has("rawok"), l.Has("compressok"))

	_, _, err = nvlist.Unpack(b[:len(b)-1], nvlist.Limits{})
	fmt.Println(err)
	// Output:
	// native 112 pool/fs@snap 10710134267608266841 true false
	// nvlist: byte 108: pair size needs 4 bytes, 3 left: truncated
}
