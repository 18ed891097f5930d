package resumetoken

// SnapshotNameProblem is snapshotNameProblem, for name_test.go.
var SnapshotNameProblem = snapshotNameProblem
