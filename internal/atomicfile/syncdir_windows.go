package atomicfile

// syncDir: Windows cannot fsync a directory; MoveFileEx (os.Rename) is
// durable once it returns.
func syncDir(string) error { return nil }
