package zfs

import (
	"context"
	"strings"

	"github.com/pkg/errors"
)

// GetProperties returns the values of properties of one dataset, numbers
// exact (quota in bytes): `zfs get -H -p -o property,value PROP,... DATASET`. A dataset that does not
// exist gives an error matching ErrNotFound.
func (z *ZFS) GetProperties(ctx context.Context, dataset string, props ...string) (map[string]string, error) {
	if err := ValidateDatasetName(dataset); err != nil {
		return nil, err
	}
	if len(props) == 0 {
		return nil, errors.New("get properties: none asked for")
	}
	for _, p := range props {
		if err := validatePropertyName(p); err != nil {
			return nil, err
		}
	}
	out, err := z.r.Run(ctx, "get", "-H", "-p", "-o", "property,value", strings.Join(props, ","), dataset)
	if err != nil {
		return nil, wrapCmd(err, "zfs get %s", dataset)
	}
	values := make(map[string]string, len(props))
	for line := range strings.SplitSeq(strings.TrimRight(string(out), "\n"), "\n") {
		if k, v, ok := strings.Cut(line, "\t"); ok {
			values[k] = v
		}
	}
	for _, p := range props {
		if _, ok := values[p]; !ok {
			return nil, errors.Errorf("zfs get %s: no value for %s in %q", dataset, p, truncate(string(out), 200))
		}
	}
	return values, nil
}
