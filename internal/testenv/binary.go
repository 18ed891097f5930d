package testenv

import (
	"os"
	"os/exec"
	"path/filepath"

	"github.com/pkg/errors"
)

// TestBinaryEnv names a prebuilt zrep-stdinserver for the integration tests
// to use instead of building one; the OpenZFS lab sets it, as its guest has
// no Go toolchain.
const TestBinaryEnv = "ZREP_TEST_BINARY"

// Binary returns the zrep-stdinserver the tests run: the file named by
// ZREP_TEST_BINARY if set, otherwise one built from pkg (e.g.
// "../cmd/zrep-stdinserver") into dir.
func Binary(dir, pkg string) (string, error) {
	if prebuilt := os.Getenv(TestBinaryEnv); prebuilt != "" {
		if _, err := os.Stat(prebuilt); err != nil {
			return "", errors.Wrap(err, TestBinaryEnv)
		}
		return prebuilt, nil
	}
	binary := filepath.Join(dir, "zrep-stdinserver")
	build := exec.Command("go", "build", "-o", binary, pkg)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", errors.Wrap(err, "building zrep-stdinserver")
	}
	return binary, nil
}
