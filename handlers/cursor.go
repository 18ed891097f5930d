package handlers

import (
	"context"

	"github.com/pkg/errors"
	"go.uber.org/zap"

	"github.com/zrep/zrep/api"
	"github.com/zrep/zrep/rpc"
	"github.com/zrep/zrep/zfs"
)

// Confirm records that the caller holds req.Snapshot: the caller's cursor
// bookmark moves there, so that the next incremental can start from it even
// after the snapshot is pruned. The old cursor is destroyed only after the
// new position has a bookmark: first DATASET#zrep_cursornext_ID, then the
// old cursor goes, the cursor is made anew, and cursornext goes. At every
// moment a bookmark at one of the two positions exists. (zfs cannot rename
// a bookmark; "cursornext" can be no identity's cursor, "zrep_cursor_" +
// an identity name.)
func (h *Handlers) Confirm(ctx context.Context, req api.ConfirmRequest) (*api.ConfirmResponse, error) {
	if err := zfs.ValidateSnapshotName(req.Snapshot); err != nil {
		return nil, invalid(err)
	}
	if ds, _, _, _ := zfs.SplitVersion(req.Snapshot); ds != req.Dataset {
		return nil, rpc.Errorf(rpc.CodeInvalidArgument, "%q is not a snapshot of dataset %q", req.Snapshot, req.Dataset)
	}
	if f, err := h.zfs.Features(ctx); err != nil || !f.Bookmarks {
		return nil, rpc.Errorf(rpc.CodeUnimplemented, "this source's zfs has no bookmarks")
	}
	_, versions, err := h.versions(ctx, req.Dataset)
	if err != nil {
		return nil, err
	}
	snap, err := findVersion(versions, req.Snapshot, req.GUID)
	if err != nil {
		return nil, err
	}
	if snap.Type != zfs.Snapshot {
		return nil, rpc.Errorf(rpc.CodeInvalidArgument, "%q is not a snapshot", req.Snapshot)
	}
	cursor := req.Dataset + "#" + h.cursor
	next := req.Dataset + "#" + h.cursorNext
	var have, haveNext bool
	for _, v := range versions {
		switch v.Name {
		case cursor:
			if v.GUID == snap.GUID {
				return &api.ConfirmResponse{Bookmark: cursor}, nil
			}
			have = true
		case next:
			haveNext = true
		}
	}
	if err := h.moveCursor(ctx, snap.Name, cursor, next, have, haveNext); err != nil {
		h.log.Error("moving the cursor bookmark failed", zap.String("cursor", cursor), zap.String("to", snap.Name), zap.Error(err))
		return nil, rpc.Errorf(rpc.CodeInternal, "moving the cursor bookmark %s failed; the server's log has the details", cursor)
	}
	h.log.Info("cursor moved", zap.String("cursor", cursor), zap.String("to", snap.Name))
	return &api.ConfirmResponse{Bookmark: cursor}, nil
}

// moveCursor makes cursor a bookmark of snapshot, the old one destroyed
// only once next holds the new position.
func (h *Handlers) moveCursor(ctx context.Context, snapshot, cursor, next string, have, haveNext bool) error {
	if !have {
		return h.cursors.Bookmark(ctx, snapshot, cursor)
	}
	if haveNext { // left by an interrupted move
		if err := h.cursors.DestroyBookmark(ctx, next); err != nil {
			return errors.WithMessage(err, "removing a leftover")
		}
	}
	for _, step := range []func() error{
		func() error { return h.cursors.Bookmark(ctx, snapshot, next) },
		func() error { return h.cursors.DestroyBookmark(ctx, cursor) },
		func() error { return h.cursors.Bookmark(ctx, snapshot, cursor) },
		func() error { return h.cursors.DestroyBookmark(ctx, next) },
	} {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}
