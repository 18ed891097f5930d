package sink

import (
	"errors"
	"reflect"
	"testing"

	"github.com/zrep/zrep/replication"
)

// TestZFSInterfaceCanOnlyAdd guards the sink's promise: its zfs can list,
// create unmounted parents, receive (resumably: read its own resume tokens,
// discard what a cut receive left) and set its root's quota, and nothing
// else — no destroy, rollback, rename, promote or other property.
func TestZFSInterfaceCanOnlyAdd(t *testing.T) {
	typ := reflect.TypeFor[ZFS]()
	var got []string
	for i := range typ.NumMethod() {
		got = append(got, typ.Method(i).Name)
	}
	want := []string{"AbortResume", "CreatePlaceholder", "Exists", "Features", "ListTree", "ListVersions", "Recv", "SetQuota"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("sink.ZFS has methods %v; want exactly %v", got, want)
	}
	// What the run gets cannot roll back either, whatever zfs it wraps.
	if _, ok := any(target{}).(replication.Rollbacker); ok {
		t.Error("the sink's target can roll back")
	}
}

// TestLockIsPerRoot: a second push into a root waits for nobody: it fails
// with ErrBusy; another root is not held up.
func TestLockIsPerRoot(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lock(dir, "backup/l1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock(dir, "backup/l1"); !errors.Is(err, ErrBusy) {
		t.Errorf("second lock of the same root: %v, want ErrBusy", err)
	}
	other, err := lock(dir, "backup/l2")
	if err != nil {
		t.Errorf("another root: %v", err)
	} else {
		other()
	}
	unlock()
	again, err := lock(dir, "backup/l1")
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	again()
}
