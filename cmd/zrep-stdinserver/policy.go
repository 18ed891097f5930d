package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/zrep/zrep/policy"
)

func newPolicyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Inspect policy files",
	}
	var file, identity string
	check := &cobra.Command{
		Use:   "check --policy FILE --identity NAME DATASET...",
		Short: "Show whether an identity may see each dataset, and which rule decided",
		Long: `Show, for each dataset, whether the identity may see it and the rule that decided,
and whether encrypted datasets go to it only raw (raw_only) and the source keeps
cursor bookmarks for it (cursor_bookmarks).

The policy uses zrepl's filter syntax: a key "tank/data<" matches tank/data
and every dataset below it, a key without '<' matches exactly that dataset,
and the bare key "<" matches every dataset of every pool. The most specific
matching key wins (an exact key beats a subtree key, a deeper subtree key a
shallower one, and "<" loses to every other key); a dataset no key matches
is denied. So {"<": true, "tank/private<": false} shows everything except
tank/private and its children.

Exit status: 0 when every dataset is allowed, 1 when one or more are denied,
2 when the policy file is unusable or the identity is not in it.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, datasets []string) error {
			f, err := policy.Load(file)
			if err != nil {
				return withExit(exitUsage, err)
			}
			filter, err := f.Filter(identity)
			if err != nil {
				return withExit(exitUsage, err)
			}
			id, _ := f.Identity(identity)
			denied := 0
			for _, ds := range datasets {
				d := filter.Decide(ds)
				verdict, how := "allowed", ""
				if !d.Allowed {
					verdict = "denied"
					denied++
				} else {
					if id.RawOnly {
						how += "; raw only, if encrypted (raw_only)"
					}
					if id.CursorBookmarks {
						how += "; keeps a cursor bookmark of what the puller confirms (cursor_bookmarks)"
					}
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\t%s%s\n", ds, verdict, d, how)
			}
			if denied > 0 {
				return silentExit(exitFailure)
			}
			return nil
		},
	}
	check.Flags().StringVar(&file, "policy", "", "policy file")
	check.Flags().StringVar(&identity, "identity", "", "identity to check")
	_ = check.MarkFlagRequired("policy")
	_ = check.MarkFlagRequired("identity")
	cmd.AddCommand(check)
	return cmd
}
