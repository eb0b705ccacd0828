// Package usersock is a local stream socket only its user can reach, and
// who is at the other end: the agent's Unix socket (a named pipe on
// Windows), its path, and the kernel's word on the peer of each
// connection. Package ipc speaks its protocol over it.
//
// # Contract
//
// SocketPath says where the agent listens and clients dial. Listen (or
// ListenActivated, under systemd) makes the listener; every connection
// it accepts must have its peer checked with PeerCred and CheckSelf
// before any byte is read or written, and be closed at once when either
// fails. Dial makes that check on the server for the client. Errors name
// the operation without a package prefix; the sentinels are for
// errors.Is.
//
// # Security
//
//   - The socket is 0600 in a 0700 directory owned by the user. Listen
//     creates the directory when missing and never repairs an existing
//     one: a symlink, another owner or any access for group or others is
//     refused (ErrSocketDirSymlink, ErrSocketDirOwner, ErrSocketDirMode),
//     since someone else may have been there.
//   - Nothing follows a symlink another user may swap in at the directory
//     (in a shared /tmp, without XDG_RUNTIME_DIR): Mkdir does not follow
//     one, there is no Chmod (0700 through the umask can only lose bits,
//     which the check refuses), and the checks are an fstat of the
//     directory opened with O_NOFOLLOW, not of whatever the name points to
//     a moment later. The socket is created 0777&^umask and narrowed to
//     0600 while the checked directory keeps others out.
//   - Listen holds an exclusive flock on <path>.lock for the listener's
//     lifetime, so two agents starting together cannot both decide the
//     socket is stale. An existing socket is removed only after a dial is
//     refused: an answer is ErrAlreadyRunning, any other outcome (a
//     timeout, a full backlog) leaves it in place, and a path that is not a
//     socket is never removed (ErrNotSocket).
//   - Peer credentials come from the kernel: SO_PEERCRED (Linux),
//     LOCAL_PEERCRED and LOCAL_PEERPID (macOS), LOCAL_PEERCRED (FreeBSD),
//     the pipe's client or server process token (Windows). A peer of
//     another user, or one whose credentials cannot be learned, is a
//     refusal; where the platform has no peer credential call (OpenBSD,
//     NetBSD, Solaris, AIX...) every connection is refused
//     (ErrPeerCredUnsupported).
//   - Dial checks the server's credentials the same way, so a socket
//     planted by someone else is not trusted with a subject token
//     (ErrForeignPeer).
//   - On Windows the pipe \\.\pipe\ncagent-<user> has a protected DACL
//     granting only the current user's SID (D:P(A;;GA;;;<SID>)), and its
//     first instance is created with FILE_FLAG_FIRST_PIPE_INSTANCE
//     semantics: it fails when the pipe exists, and a checked dial then
//     tells a running agent from a squatter. A pipe name that collides is
//     harmless: clients check the server's SID.
//   - Socket activation follows sd_listen_fds(3): the descriptors are used
//     only when LISTEN_PID is our pid, the LISTEN_* variables are unset so
//     children do not inherit them, the descriptors are made close-on-exec,
//     and the socket file is systemd's: the listener's Close leaves it.
package usersock
