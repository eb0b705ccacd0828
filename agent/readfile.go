package agent

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
)

// errNotRegular is wrapped by readBounded's error for a device, FIFO,
// socket or directory.
var errNotRegular = errors.New("not a regular file")

// readBounded reads the regular file at path, at most limit bytes. It
// refuses anything else, and a file larger than limit, with an error that
// names the path and says what to do: /dev/zero would fill memory, a FIFO
// would block forever. The open does not block on a FIFO (O_NONBLOCK
// where there is one). A missing file is an error wrapping
// fs.ErrNotExist.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := openNoBlock(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w (%s): point it at a file", path, errNotRegular, fileKind(fi.Mode()))
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes: point it at a smaller file", path, limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes: point it at a smaller file", path, limit)
	}
	return data, nil
}

// fileKind names what a non-regular file is.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return "not a plain file"
}
