package broker

import (
	"fmt"
	"io"
)

// readBody reads a response body of at most maxResponseBytes. A longer
// body is refused, not cut: a cut JSON document fails with a misleading
// error at best.
func readBody(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxResponseBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxResponseBytes {
		return nil, fmt.Errorf("the server's answer is larger than %d bytes: refused (is this the right server?)", maxResponseBytes)
	}
	return b, nil
}
