package zfs

import "testing"

// TestDetectFeaturesOfDebianOpenZFS reads the usage texts that Debian's
// OpenZFS printed in the lab's VMs (`zfs 2>&1`, see make test-openzfs):
// bookworm's 2.1.11 and bookworm-backports' 2.3.2 have every feature zrep
// detects; and each text is recognised as a zfs usage text.
func TestDetectFeaturesOfDebianOpenZFS(t *testing.T) {
	for _, name := range []string{"usage-openzfs-2.1.11.txt", "usage-openzfs-2.3.2.txt"} {
		usage := readTestdata(t, name)
		if !usageLooksValid(usage) {
			t.Errorf("%s: not taken for a zfs usage text", name)
		}
		f := DetectFeatures(usage)
		if !f.ListParsable || !f.Bookmarks || !f.RecvUnmounted || !f.ResumeTokens || !f.SendEstimate {
			t.Errorf("%s: features %+v, want all", name, f)
		}
	}
}
