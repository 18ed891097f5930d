package zfs

import (
	"errors"
	"testing"
)

func TestGetProperties(t *testing.T) {
	f := fuseFake(t).
		on("get -H -p -o property,value mountpoint,canmount bk/web1", "mountpoint\tnone\ncanmount\ton\n", nil).
		on("get -H -p -o property,value mountpoint,canmount bk/x", "", notFoundErr("get", "bk/x")).
		on("get -H -p -o property,value mountpoint,canmount bk/short", "mountpoint\tnone\n", nil)
	z := New(f)
	got, err := z.GetProperties(ctx, "bk/web1", "mountpoint", "canmount")
	if err != nil || got["mountpoint"] != "none" || got["canmount"] != "on" || len(got) != 2 {
		t.Errorf("GetProperties = %v, %v", got, err)
	}
	if _, err := z.GetProperties(ctx, "bk/x", "mountpoint", "canmount"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing dataset: %v, want ErrNotFound", err)
	}
	if _, err := z.GetProperties(ctx, "bk/short", "mountpoint", "canmount"); err == nil {
		t.Error("a missing value was not an error")
	}
	for _, bad := range [][]string{{"-bk", "mountpoint"}, {"bk/a", "mount point"}, {"bk/a"}} {
		if _, err := z.GetProperties(ctx, bad[0], bad[1:]...); err == nil {
			t.Errorf("GetProperties(%q) ran", bad)
		}
	}
}
