package server

// Exit statuses of `serve` (and of a session of the embedded sshd, which the
// client's ssh reports as its own exit status).
const (
	// ExitOK: the client closed the session in order.
	ExitOK = 0
	// ExitFailure: the session ended any other way: a protocol error, the
	// client vanished, the idle timeout, a failed handshake.
	ExitFailure = 1
	// ExitConfig: the endpoint could not start: bad flags, an unreadable or
	// invalid policy, an unknown identity.
	ExitConfig = 2
)

// ExitCode maps the result of Endpoint.Serve to an exit status.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	return ExitFailure
}
