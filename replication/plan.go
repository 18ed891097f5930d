// Package replication plans and runs the transfers that bring a backup
// host's datasets up to date with a source endpoint's.
//
// Planning works by snapshot guid, as zrepl and syncoid do: a target that
// does not exist gets a full stream of the oldest source snapshot, then one
// incremental stream (zfs send -I) up to the newest; an existing target
// gets an incremental stream from the newest snapshot both sides share (by
// guid) up to the newest source snapshot. A target that has diverged — it
// has snapshots after the common one that the source lacks, or shares none —
// is refused unless the operator forces a rollback.
package replication

import (
	"fmt"
	"sort"
	"strings"

	"github.com/zrep/zrep/api"
	"github.com/zrep/zrep/internal/units"
	"github.com/zrep/zrep/resumetoken"
	"github.com/zrep/zrep/zfs"
)

// StepKind says what kind of stream a step receives.
type StepKind string

// Step kinds.
const (
	StepFull        StepKind = "full"
	StepIncremental StepKind = "incremental"
)

// Step is one zfs send | zfs recv.
type Step struct {
	Kind StepKind     `json:"kind"`
	From *api.Version `json:"from,omitempty"` // the incremental base; nil for a full stream
	To   api.Version  `json:"to"`
	// Intermediates: the stream carries every snapshot between From and To
	// (zfs send -I), not only To.
	Intermediates bool `json:"intermediates,omitempty"`
	// Snapshots are the source snapshots this step creates on the target,
	// oldest first; their guids are checked afterwards.
	Snapshots []api.Version `json:"snapshots"`
	// ResumeToken: the step continues a cut transfer (zfs send -t with the
	// target's receive_resume_token) instead of starting it again.
	ResumeToken string `json:"-"`
	Resumed     bool   `json:"resumed,omitempty"`
	// ResumedBytes is how much of the stream the target already holds.
	ResumedBytes int64 `json:"resumed_bytes,omitempty"`
}

// String describes the step for humans, e.g. "incremental @s1 -> @s5 (4 snapshots)".
func (s Step) String() string {
	if s.Resumed {
		return fmt.Sprintf("resume %s (%s already received)", short(s.To.Name), units.FormatSize(uint64(s.ResumedBytes)))
	}
	if s.From == nil {
		return fmt.Sprintf("full %s", short(s.To.Name))
	}
	return fmt.Sprintf("incremental %s -> %s (%d snapshot%s)", short(s.From.Name), short(s.To.Name), len(s.Snapshots), plural(len(s.Snapshots)))
}

// Action says what a dataset's plan does.
type Action string

// Plan actions.
const (
	ActionReplicate Action = "replicate"  // steps to run
	ActionUpToDate  Action = "up-to-date" // nothing to do
	ActionNoSource  Action = "no-snapshots"
	ActionDiverged  Action = "diverged" // refused; see Diverged
)

// DatasetPlan is what will happen to one dataset.
type DatasetPlan struct {
	Dataset string `json:"dataset"`        // the source dataset
	Type    string `json:"type,omitempty"` // its type: "filesystem" or "volume"
	Target  string `json:"target"`         // the local dataset
	Action  Action `json:"action"`
	// TargetExists: the target dataset exists already.
	TargetExists bool `json:"target_exists"`
	// RollbackTo, with --force-rollback on a diverged target, is the common
	// snapshot the target is rolled back to first (destroying the target's
	// later snapshots). Empty with DestroyTarget.
	RollbackTo string `json:"rollback_to,omitempty"`
	// DestroySnapshots, with --force-rollback on a target sharing no snapshot
	// with the source, are the target snapshots destroyed before a full receive.
	DestroySnapshots []string `json:"destroy_snapshots,omitempty"`
	// Force: receive with zfs recv -F (only with --force-rollback).
	Force    bool      `json:"force,omitempty"`
	Steps    []Step    `json:"steps,omitempty"`
	Diverged *Diverged `json:"diverged,omitempty"`
	// Raw: the dataset is encrypted and received raw (zfs send -w).
	Raw bool `json:"raw,omitempty"`
	// Confirm is the snapshot to confirm to the source once the plan ran
	// (for its cursor bookmark), when the source has no bookmark of it.
	Confirm *api.Version `json:"-"`
	// ClearResume, when the target holds a resume token that can no longer
	// be used, says why: the token (and what the cut receive left) is
	// discarded, zfs receive -A, before the steps, which start afresh.
	ClearResume string `json:"clear_resume,omitempty"`
}

// Diverged explains why a target cannot be updated incrementally.
type Diverged struct {
	Dataset string `json:"dataset"`
	Target  string `json:"target"`
	// Common is the newest snapshot both sides share; empty if none.
	Common string `json:"common,omitempty"`
	// TargetOnly are the target's snapshots after Common that the source lacks.
	TargetOnly []string `json:"target_only,omitempty"`
	// SourceSnapshots and TargetSnapshots list both sides (short names).
	SourceSnapshots []string `json:"source_snapshots"`
	TargetSnapshots []string `json:"target_snapshots"`
}

// Error explains the divergence and what the operator can do.
func (d *Diverged) Error() string {
	var b strings.Builder
	if d.Common == "" {
		fmt.Fprintf(&b, "target %s shares no snapshot with source %s", d.Target, d.Dataset)
	} else {
		fmt.Fprintf(&b, "target %s has diverged from source %s: after the common snapshot %s it has %s, which the source does not have",
			d.Target, d.Dataset, short(d.Common), strings.Join(d.TargetOnly, ", "))
	}
	fmt.Fprintf(&b, " (source snapshots: %s; target snapshots: %s); nothing was changed; --force-rollback would ",
		list(d.SourceSnapshots), list(d.TargetSnapshots))
	if d.Common == "" {
		b.WriteString("destroy the target's snapshots and receive a full stream")
	} else {
		fmt.Fprintf(&b, "roll the target back to %s, destroying %s", short(d.Common), strings.Join(d.TargetOnly, ", "))
	}
	return b.String()
}

// PlanOptions change how a dataset is planned.
type PlanOptions struct {
	// ForceRollback allows destroying target snapshots the source does not
	// have, and receiving with -F.
	ForceRollback bool
	// ResumeToken is the target's receive_resume_token, when a cut
	// resumable receive left one.
	ResumeToken string
}

// PlanDataset plans one dataset. source lists the source dataset's
// versions; target is the local dataset's listing, nil when it does not exist.
func PlanDataset(source api.Filesystem, targetName string, target *zfs.DatasetVersions, o PlanOptions) DatasetPlan {
	p := DatasetPlan{Dataset: source.Name, Type: source.Type, Target: targetName, TargetExists: target != nil}
	snaps := sourceSnapshots(source.Versions)
	if o.ResumeToken != "" {
		steps, why := resumeSteps(source, target, snaps, o.ResumeToken)
		if why == "" {
			p.Action, p.Steps = ActionReplicate, steps
			return p
		}
		p.ClearResume = why
		if target != nil && len(targetSnapshots(target.Versions)) == 0 {
			// A partly received new dataset goes with its token.
			target, p.TargetExists = nil, false
		}
	}
	if len(snaps) == 0 {
		p.Action = ActionNoSource
		return p
	}
	if target == nil {
		p.Action = ActionReplicate
		p.Steps = fullThenIncremental(snaps)
		return p
	}
	targetSnaps := targetSnapshots(target.Versions)
	common, commonIdx := newestCommon(source.Versions, targetSnaps)
	div := &Diverged{
		Dataset:         source.Name,
		Target:          targetName,
		SourceSnapshots: shortNames(apiNames(snaps)),
		TargetSnapshots: shortNames(zfsNames(targetSnaps)),
	}
	switch {
	case common == nil:
		// An existing target without any snapshot is refused too: it may
		// hold data, and a full receive replaces it only with -F.
		if !o.ForceRollback {
			p.Action, p.Diverged = ActionDiverged, div
			return p
		}
		p.Action, p.Force = ActionReplicate, true
		p.DestroySnapshots = zfsNames(targetSnaps)
		p.Steps = fullThenIncremental(snaps)
		return p
	case commonIdx < len(targetSnaps)-1:
		div.Common = common.Name
		div.TargetOnly = shortNames(zfsNames(targetSnaps[commonIdx+1:]))
		if !o.ForceRollback {
			p.Action, p.Diverged = ActionDiverged, div
			return p
		}
		p.RollbackTo = targetSnaps[commonIdx].Name
	}
	if o.ForceRollback {
		p.Force = true
	}
	p.Steps = incrementalFrom(*common, snaps)
	p.Action = ActionReplicate
	if len(p.Steps) == 0 && p.RollbackTo == "" {
		p.Action = ActionUpToDate
	}
	return p
}

// resumeSteps plans the continuation of a cut transfer from the target's
// token: the rest of the snapshot in transit, then the usual incremental
// steps from it. When the token cannot be used, it says why: the snapshot
// it resumes is gone from the source (or renamed), or its base is not the
// target's newest snapshot any more.
func resumeSteps(source api.Filesystem, target *zfs.DatasetVersions, snaps []api.Version, token string) ([]Step, string) {
	tok, err := resumetoken.Decode(token)
	if err != nil {
		return nil, fmt.Sprintf("it does not decode: %v", err)
	}
	var to *api.Version
	for i := range snaps {
		if uint64(snaps[i].GUID) == tok.ToGUID {
			to = &snaps[i]
		}
	}
	switch {
	case to == nil:
		return nil, fmt.Sprintf("the snapshot it resumes, %s (guid %d), is no longer on the source", tok.ToName, tok.ToGUID)
	case to.Name != tok.ToName:
		return nil, fmt.Sprintf("the snapshot it resumes, %s, is now %s on the source", tok.ToName, to.Name)
	}
	var targetSnaps []zfs.Version
	if target != nil {
		targetSnaps = targetSnapshots(target.Versions)
	}
	step := Step{Kind: StepFull, To: *to, Snapshots: []api.Version{*to}, ResumeToken: token, Resumed: true, ResumedBytes: int64(min(tok.Bytes, 1<<62))}
	if tok.FromGUID == 0 {
		if len(targetSnaps) > 0 {
			return nil, "it resumes a full stream, and the target has snapshots"
		}
	} else {
		if len(targetSnaps) == 0 || targetSnaps[len(targetSnaps)-1].GUID != tok.FromGUID {
			return nil, fmt.Sprintf("its base (guid %d) is not the target's newest snapshot", tok.FromGUID)
		}
		base, _ := newestCommon(source.Versions, targetSnaps[len(targetSnaps)-1:])
		if base == nil {
			return nil, fmt.Sprintf("its base (guid %d) is no longer on the source", tok.FromGUID)
		}
		step.Kind, step.From = StepIncremental, base
	}
	return append([]Step{step}, incrementalFrom(*to, snaps)...), ""
}

// fullThenIncremental: a full stream of the oldest snapshot, then one -I
// stream carrying all the others.
func fullThenIncremental(snaps []api.Version) []Step {
	steps := []Step{{Kind: StepFull, To: snaps[0], Snapshots: snaps[:1]}}
	if len(snaps) > 1 {
		from := snaps[0]
		steps = append(steps, Step{Kind: StepIncremental, From: &from, To: snaps[len(snaps)-1], Intermediates: true, Snapshots: snaps[1:]})
	}
	return steps
}

// incrementalFrom plans the streams from the common version (a source
// snapshot or bookmark) to the newest source snapshot. From a bookmark, zfs
// cannot send -I: the first snapshot after it comes with -i, the rest with -I.
func incrementalFrom(common api.Version, snaps []api.Version) []Step {
	var after []api.Version
	for _, s := range snaps {
		if s.CreateTXG > common.CreateTXG {
			after = append(after, s)
		}
	}
	if len(after) == 0 {
		return nil
	}
	if common.Type == api.TypeBookmark {
		steps := []Step{{Kind: StepIncremental, From: &common, To: after[0], Snapshots: after[:1]}}
		if len(after) > 1 {
			from := after[0]
			steps = append(steps, Step{Kind: StepIncremental, From: &from, To: after[len(after)-1], Intermediates: true, Snapshots: after[1:]})
		}
		return steps
	}
	return []Step{{Kind: StepIncremental, From: &common, To: after[len(after)-1], Intermediates: len(after) > 1, Snapshots: after}}
}

// newestCommon finds the newest target snapshot whose guid the source has
// (as a snapshot, or as a bookmark made from it). It returns the source's
// version and the target snapshot's index.
func newestCommon(source []api.Version, targetSnaps []zfs.Version) (*api.Version, int) {
	byGUID := make(map[api.GUID]api.Version, len(source))
	for _, v := range source {
		// A snapshot is the better base than a bookmark of the same guid: -I works from it.
		if old, ok := byGUID[v.GUID]; !ok || old.Type == api.TypeBookmark {
			byGUID[v.GUID] = v
		}
	}
	for i := len(targetSnaps) - 1; i >= 0; i-- {
		if v, ok := byGUID[api.GUID(targetSnaps[i].GUID)]; ok {
			return &v, i
		}
	}
	return nil, -1
}

func sourceSnapshots(vs []api.Version) []api.Version {
	var out []api.Version
	for _, v := range vs {
		if v.Type == api.TypeSnapshot {
			out = append(out, v)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreateTXG < out[j].CreateTXG })
	return out
}

func targetSnapshots(vs []zfs.Version) []zfs.Version {
	var out []zfs.Version
	for _, v := range vs {
		if v.Type == zfs.Snapshot {
			out = append(out, v)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreateTXG < out[j].CreateTXG })
	return out
}

func apiNames(vs []api.Version) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Name
	}
	return out
}

func zfsNames(vs []zfs.Version) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Name
	}
	return out
}

// short turns "pool/a@s1" into "@s1".
func short(name string) string {
	if i := strings.IndexAny(name, "@#"); i >= 0 {
		return name[i:]
	}
	return name
}

func shortNames(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = short(n)
	}
	return out
}

// list shortens a long snapshot list for messages: the first three, the
// last three and a count.
func list(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	if len(names) <= 8 {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s, … %d more …, %s", strings.Join(names[:3], ", "), len(names)-6, strings.Join(names[len(names)-3:], ", "))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
