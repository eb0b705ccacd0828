//go:build !windows

package packaging

import "fmt"

// openRegistry fails: the Run key exists only on Windows.
func openRegistry() (regStore, error) {
	return nil, fmt.Errorf("%w: the windows registry is only on windows", ErrUnsupported)
}
